-- Profiles: full recompute from the stored vectors of the last N interactions, with time decay.
--
--   d_i     = 0.5 ^ ((t_ref - t_i) / half_life),  t_ref = newest interaction with a vector
--   profile = sum(w_i * d_i * v_i) / sum(|w_i| * d_i)
--   accumulated_weight = sum(|w_i| * d_i)            (what the incremental strategy continues from)
--
-- Negative weights (dislikes) pull the profile away from those entities. No embedding call here:
-- only rows of recvector.entity_vectors are read.
--
-- Multi-interest profiles (aggregation.interests = K > 1): the positive part of the history is
-- clustered into at most K interests — seeds by weighted farthest-point from the heaviest
-- interaction (a new seed only if it is at least a cosine distance of 0.55 from every seed, so a
-- user of one taste keeps one interest), three rounds of assigning every interaction to its nearest
-- interest and re-averaging (the same formula as the profile, per cluster), interests under 10 % of
-- the weight dropped — as PinnerSage (KDD 2020) does with medoids. K = 1 is exactly the 0.2.0
-- profile. Each interest costs D x 4 bytes per user (a 384-d interest: 1.5 kB).
--
-- Collaborative candidates: the user's positive entities (net weight x decay > 0) each vote, with
-- that weight, for their neighbours (recvector.item_neighbors: cosine co-occurrence or EASE); the
-- aggregation.cf_candidates strongest entities not already in the history are kept with the
-- profile, so that serving reads them instead of aggregating neighbour lists on every call.

CREATE OR REPLACE FUNCTION recvector._interests(vecs @vector@.vector[], w double precision[], k integer,
                                                split_distance double precision DEFAULT 0.55,
                                                min_share double precision DEFAULT 0.1,
                                                OUT interests @vector@.vector[], OUT shares real[])
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    n integer := coalesce(cardinality(vecs), 0);
    seeds integer[];
    cent @vector@.vector[];
    assign integer[];
    far record;
    total double precision;
BEGIN
    IF k IS NULL OR k <= 1 OR n < 2 THEN
        RETURN;  -- one interest: the profile itself
    END IF;
    seeds := ARRAY(SELECT u.o FROM unnest(w) WITH ORDINALITY AS u(x, o) WHERE u.x > 0 ORDER BY u.x DESC, u.o LIMIT 1);
    WHILE cardinality(seeds) BETWEEN 1 AND k - 1 LOOP
        SELECT f.o, f.d INTO far
        FROM (SELECT v.o, v.x, min(v.vec OPERATOR(@vector@.<=>) vecs[s.i]) AS d
              FROM unnest(vecs, w) WITH ORDINALITY AS v(vec, x, o), unnest(seeds) AS s(i)
              WHERE v.x > 0 GROUP BY v.o, v.x) AS f
        ORDER BY f.x * f.d DESC, f.o LIMIT 1;
        EXIT WHEN far.d IS NULL OR far.d < split_distance;
        seeds := seeds || far.o;
    END LOOP;
    IF cardinality(seeds) < 2 THEN
        RETURN;
    END IF;
    cent := ARRAY(SELECT vecs[s.i] FROM unnest(seeds) WITH ORDINALITY AS s(i, o) ORDER BY s.o);
    FOR round IN 1 .. 4 LOOP
        -- every interaction (dislikes too) to its nearest interest ...
        assign := ARRAY(SELECT (SELECT c.j FROM unnest(cent) WITH ORDINALITY AS c(cv, j)
                                ORDER BY v.vec OPERATOR(@vector@.<=>) c.cv, c.j LIMIT 1)
                        FROM unnest(vecs) WITH ORDINALITY AS v(vec, o) ORDER BY v.o);
        -- ... each interest the weighted mean of its interactions; the last round drops those
        -- under min_share of the weight (their interactions go to the nearest one left).
        SELECT sum(abs(x)) INTO total FROM unnest(w) AS x;
        SELECT array_agg(g.c ORDER BY g.share DESC, g.j), array_agg(g.share::real ORDER BY g.share DESC, g.j)
        INTO cent, shares
        FROM (SELECT a.j,
                     recvector._scale(@vector@.sum(recvector._scale(vecs[a.o], w[a.o])), 1.0 / sum(abs(w[a.o]))) AS c,
                     sum(abs(w[a.o])) / total AS share
              FROM unnest(assign) WITH ORDINALITY AS a(j, o)
              GROUP BY a.j
              HAVING sum(w[a.o]) > 0 AND (round < 4 OR sum(abs(w[a.o])) / total >= min_share)) AS g;
        EXIT WHEN cardinality(cent) < 2;
    END LOOP;
    IF coalesce(cardinality(cent), 0) < 2 THEN
        shares := NULL;  -- one interest: the profile itself
        RETURN;
    END IF;
    SELECT sum(x) INTO total FROM unnest(shares) AS x;
    interests := cent;
    shares := ARRAY(SELECT (x / total)::real FROM unnest(shares) WITH ORDINALITY AS s(x, o) ORDER BY s.o);
END
$$;
COMMENT ON FUNCTION recvector._interests(@vector@.vector[], double precision[], integer, double precision, double precision) IS
  'Internal: up to k interest vectors of a history (vectors with weight x decay): weighted farthest-point seeds at least split_distance apart, then rounds of nearest-interest assignment and weighted means; interests under min_share of the weight dropped; strongest first, with their shares. NULLs when the history has one interest.';

-- The incremental strategy's nudge of interests and collaborative candidates (the mean itself is
-- nudged in _ingest): each new interaction joins its nearest interest, whose weighted mean and
-- share move exactly as the profile's do; the neighbours of each new positive entity add their
-- votes to the collaborative candidates (old scores decayed like the profile's weight).
CREATE OR REPLACE FUNCTION recvector._nudged(
    interests @vector@.vector[], shares real[], old_weight double precision,
    cf_candidates text[], cf_scores real[], decay double precision,
    new_ids text[], new_vecs @vector@.vector[], new_w double precision[], cf_limit integer,
    OUT n_interests @vector@.vector[], OUT n_shares real[], OUT n_candidates text[], OUT n_scores real[])
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF interests IS NOT NULL AND cardinality(interests) > 1 THEN
        WITH acc AS (SELECT c.j, c.cv, coalesce(shares[c.j], 0) * old_weight AS a
                     FROM unnest(interests) WITH ORDINALITY AS c(cv, j)),
            ev AS (SELECT e.vec, e.x,
                          (SELECT c.j FROM unnest(interests) WITH ORDINALITY AS c(cv, j)
                           ORDER BY e.vec OPERATOR(@vector@.<=>) c.cv, c.j LIMIT 1) AS j
                   FROM unnest(new_vecs, new_w) AS e(vec, x) WHERE e.vec IS NOT NULL AND e.x <> 0),
            moved AS (SELECT acc.j, acc.a + coalesce(sum(abs(ev.x)), 0) AS a2,
                             CASE WHEN count(ev.x) = 0 THEN acc.cv
                                  WHEN acc.a + sum(abs(ev.x)) > 0 THEN
                                      recvector._scale(coalesce(recvector._scale(acc.cv, acc.a) OPERATOR(@vector@.+)
                                                                    @vector@.sum(recvector._scale(ev.vec, ev.x)),
                                                                @vector@.sum(recvector._scale(ev.vec, ev.x))),
                                                       1.0 / (acc.a + sum(abs(ev.x))))
                                  ELSE acc.cv END AS cv
                      FROM acc LEFT JOIN ev ON ev.j = acc.j GROUP BY acc.j, acc.a, acc.cv)
        SELECT array_agg(m.cv ORDER BY m.j), array_agg((m.a2 / nullif(m.total, 0))::real ORDER BY m.j)
        INTO n_interests, n_shares
        FROM (SELECT mv.*, sum(mv.a2) OVER () AS total FROM moved AS mv) AS m;
    ELSE
        n_interests := interests;
        n_shares := shares;
    END IF;
    IF cf_limit > 0 THEN
        SELECT array_agg(s.id ORDER BY s.x DESC, s.id), array_agg(s.x::real ORDER BY s.x DESC, s.id)
        INTO n_candidates, n_scores
        FROM (SELECT g.id, sum(g.x) AS x
              FROM (SELECT c.id, c.x * decay AS x FROM unnest(cf_candidates, cf_scores) AS c(id, x)
                    UNION ALL
                    SELECT n.id, e.x * n.w
                    FROM unnest(new_ids, new_w) AS e(id, x)
                    JOIN recvector.item_neighbors AS nb ON nb.entity_id = e.id
                    CROSS JOIN LATERAL unnest(nb.neighbor_ids, nb.weights) AS n(id, w)
                    WHERE e.x > 0) AS g
              WHERE NOT (g.id = ANY (new_ids))
              GROUP BY g.id HAVING sum(g.x) > 0
              ORDER BY 2 DESC, 1 LIMIT cf_limit) AS s;
    END IF;
END
$$;
COMMENT ON FUNCTION recvector._nudged(@vector@.vector[], real[], double precision, text[], real[], double precision, text[], @vector@.vector[], double precision[], integer) IS
  'Internal: interests and collaborative candidates after new interactions (the incremental strategy): each new vector joins its nearest interest (weighted means and shares move exactly like the profile), the neighbours of each new positive entity add their weighted votes to the candidates (old scores decayed), at most cf_limit kept.';

-- A profile from given interactions (the stored profiles and the evaluation both use it).
CREATE OR REPLACE FUNCTION recvector._profile_of(
    entity_ids text[], weights double precision[], times timestamptz[],
    half_life_seconds double precision, k integer DEFAULT 1, cf_limit integer DEFAULT 200,
    neighbors text DEFAULT 'recvector.item_neighbors', per_candidate integer DEFAULT 5,
    OUT embedding @vector@.vector, OUT accumulated_weight double precision,
    OUT last_interaction_at timestamptz, OUT interactions integer,
    OUT interests @vector@.vector[], OUT interest_weights real[],
    OUT cf_candidates text[], OUT cf_scores real[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
    vecs @vector@.vector[];
    wd double precision[];
BEGIN
    WITH h AS (SELECT u.e, u.w, u.t, u.o FROM unnest(entity_ids, weights, times) WITH ORDINALITY AS u(e, w, t, o)
               WHERE u.w <> 0),
        hv AS (SELECT h.*, v.embedding FROM h JOIN recvector.entity_vectors AS v ON v.entity_id = h.e),
        ref AS (SELECT max(hv.t) AS t_ref, count(*)::integer AS n FROM hv),
        d AS (SELECT hv.*, hv.w * recvector._decay(hv.t, ref.t_ref, half_life_seconds) AS x FROM hv, ref)
    SELECT CASE WHEN sum(abs(d.x)) > 0
                THEN recvector._scale(@vector@.sum(recvector._scale(d.embedding, d.x)), 1.0 / sum(abs(d.x))) END,
           coalesce(sum(abs(d.x)), 0), max(ref.t_ref), max(ref.n),
           array_agg(d.embedding ORDER BY d.o), array_agg(d.x ORDER BY d.o)
    INTO embedding, accumulated_weight, last_interaction_at, interactions, vecs, wd
    FROM ref LEFT JOIN d ON true;
    interactions := coalesce(interactions, 0);
    SELECT i.interests, i.shares INTO interests, interest_weights FROM recvector._interests(vecs, wd, k) AS i;
    -- Collaborative candidates: every positive entity (net weight x decay > 0) votes for its
    -- neighbours with that weight; entities of the history are not candidates.
    IF cf_limit > 0 AND cardinality(entity_ids) > 0 THEN
        EXECUTE format($q$
            WITH seeds AS (
                SELECT u.e, sum(u.w * recvector._decay(u.t, (SELECT max(t) FROM unnest($2) AS t), $4)) AS x
                FROM unnest($1, $3, $2) AS u(e, w, t) GROUP BY u.e)
            SELECT array_agg(c.id ORDER BY c.s DESC, c.id), array_agg(c.s::real ORDER BY c.s DESC, c.id)
            FROM (SELECT v.id, sum(v.x * v.w) AS s
                  FROM (SELECT n.id, s.x, n.w, nb.method,
                               row_number() OVER (PARTITION BY n.id ORDER BY n.w DESC, s.e) AS rk
                        FROM seeds AS s
                        JOIN %s AS nb ON nb.entity_id = s.e
                        CROSS JOIN LATERAL unnest(nb.neighbor_ids, nb.weights) AS n(id, w)
                        WHERE s.x > 0 AND NOT (n.id = ANY ($1))) AS v
                  -- cosine neighbours: each candidate counts only its per_candidate most similar
                  -- entities of the history ("target pruning"); EASE's weights all count.
                  WHERE v.method <> 'cosine' OR v.rk <= $6
                  GROUP BY v.id HAVING sum(v.x * v.w) > 0
                  ORDER BY 2 DESC, 1 LIMIT $5) AS c $q$, neighbors)
        INTO cf_candidates, cf_scores
        USING entity_ids, times, weights, half_life_seconds, cf_limit, per_candidate;
    END IF;
END
$$;
COMMENT ON FUNCTION recvector._profile_of(text[], double precision[], timestamp with time zone[], double precision, integer, integer, text, integer) IS
  'Internal: the profile of a history given as arrays (entity, weight, time): the decayed weighted mean of the stored vectors, its accumulated weight, newest time and count; up to k interests; and the cf_limit strongest collaborative candidates from a neighbour relation (RecVector''s, or the evaluation''s).';

CREATE OR REPLACE FUNCTION recvector._profile_from_history(
    p_user_id text, p_before timestamptz DEFAULT NULL, p_half_life_seconds double precision DEFAULT NULL,
    p_exclude text[] DEFAULT NULL,
    OUT embedding @vector@.vector, OUT accumulated_weight double precision,
    OUT last_interaction_at timestamptz, OUT interactions integer,
    OUT interests @vector@.vector[], OUT interest_weights real[],
    OUT cf_candidates text[], OUT cf_scores real[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
    m recvector.mapping := recvector._mapping();
    hl double precision := coalesce(p_half_life_seconds, (m.compiled -> 'aggregation' ->> 'half_life_seconds')::double precision);
    lim integer := (m.document -> 'aggregation' ->> 'history_limit')::integer;
    ids text[];
    ws double precision[];
    ts timestamptz[];
BEGIN
    SELECT array_agg(h.entity_id ORDER BY h.o), array_agg(h.weight ORDER BY h.o), array_agg(h.occurred_at ORDER BY h.o)
    INTO ids, ws, ts
    FROM recvector._mapped_history(m.compiled -> 'params', p_user_id, lim,
                                   recvector._id_or_null(p_user_id, m.compiled ->> 'user_id_type'), p_before)
         WITH ORDINALITY AS h(user_id, entity_id, kind, weight, occurred_at, o)
    WHERE p_exclude IS NULL OR NOT (h.entity_id = ANY (p_exclude));
    SELECT * INTO embedding, accumulated_weight, last_interaction_at, interactions, interests, interest_weights,
                  cf_candidates, cf_scores
    FROM recvector._profile_of(ids, ws, ts, hl, coalesce((m.document -> 'aggregation' ->> 'interests')::integer, 1),
                               coalesce((m.document -> 'aggregation' ->> 'cf_candidates')::integer, 200),
                               'recvector.item_neighbors',
                               coalesce((m.document -> 'neighbors' ->> 'per_candidate')::integer, 5));
END
$$;
COMMENT ON FUNCTION recvector._profile_from_history(text, timestamp with time zone, double precision, text[]) IS
  'Internal: a user''s profile (recvector._profile_of) from their last history_limit interactions (before p_before, without the entities in p_exclude, when given), time-decayed (with another half-life when given).';

CREATE OR REPLACE FUNCTION recvector.update_user_profile(user_id text)
RETURNS recvector.rec_user_profiles
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    p record;
    result recvector.rec_user_profiles;
BEGIN
    IF update_user_profile.user_id IS NULL THEN
        RAISE EXCEPTION 'user_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- Lock the row first, without waiting: concurrent ingests for this user then wait for us and are
    -- seen by the history read. A row another transaction holds (an application's insert in
    -- progress) is an error here rather than a wait, so that maintenance never waits on the
    -- application in a cycle (docs/reliability.md); the queue tries again.
    BEGIN
        PERFORM 1 FROM recvector.rec_user_profiles r WHERE r.user_id = update_user_profile.user_id FOR UPDATE NOWAIT;
    EXCEPTION WHEN lock_not_available THEN
        RAISE EXCEPTION 'the profile of user % is being written by another transaction', quote_literal(update_user_profile.user_id)
            USING ERRCODE = 'lock_not_available',
                  HINT = 'Try again when it commits; recvector.process_queue() retries queued users by itself.';
    END;
    p := recvector._profile_from_history(update_user_profile.user_id);
    INSERT INTO recvector.rec_user_profiles AS r
        (user_id, embedding, accumulated_weight, last_interaction_at, interaction_count_since_update, version, last_updated,
         interests, interest_weights, cf_candidates, cf_scores)
    VALUES (update_user_profile.user_id, p.embedding, p.accumulated_weight, p.last_interaction_at, 0, 1, now(),
            p.interests, p.interest_weights, p.cf_candidates, p.cf_scores)
    ON CONFLICT (user_id) DO UPDATE
        SET embedding = excluded.embedding,
            accumulated_weight = excluded.accumulated_weight,
            last_interaction_at = excluded.last_interaction_at,
            interaction_count_since_update = 0,
            interests = excluded.interests,
            interest_weights = excluded.interest_weights,
            cf_candidates = excluded.cf_candidates,
            cf_scores = excluded.cf_scores,
            -- An unchanged profile keeps its version (vectors compared as real[]: pgvector's = is not on
            -- RecVector's search_path); last_updated always moves: the profile is up to date as of now.
            version = r.version + CASE WHEN (r.embedding::real[], r.accumulated_weight, r.last_interaction_at,
                                             r.interaction_count_since_update, r.interests::text, r.interest_weights,
                                             r.cf_candidates, r.cf_scores)
                                            IS DISTINCT FROM (excluded.embedding::real[], excluded.accumulated_weight,
                                                              excluded.last_interaction_at, 0, excluded.interests::text,
                                                              excluded.interest_weights, excluded.cf_candidates,
                                                              excluded.cf_scores)
                                       THEN 1 ELSE 0 END,
            last_updated = now();
    SELECT * INTO result FROM recvector.rec_user_profiles r WHERE r.user_id = update_user_profile.user_id;
    RETURN result;
END
$$;
COMMENT ON FUNCTION recvector.update_user_profile(text) IS
  'Recomputes one user''s profile now from the stored vectors of their last history_limit interactions (time-decayed) and resets their counter. Unchanged profiles keep their version.';

CREATE OR REPLACE FUNCTION recvector.rebuild_entity_stats()
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m recvector.mapping := recvector._mapping();
    n integer;
BEGIN
    PERFORM recvector._check_columns(m.compiled -> 'columns');
    EXECUTE format($q$
        WITH t AS (%s),
        per_kind AS (SELECT entity_id, kind, count(*) AS cnt, count(*) FILTER (WHERE weight > 0) AS pos
                     FROM t GROUP BY entity_id, kind),
        agg AS (SELECT entity_id, jsonb_object_agg(kind, cnt ORDER BY kind) AS fc, sum(pos)::double precision AS pop
                FROM per_kind GROUP BY entity_id),
        gone AS (DELETE FROM recvector.rec_entity_stats s
                 WHERE NOT EXISTS (SELECT 1 FROM agg WHERE agg.entity_id = s.entity_id)),
        -- Deferred captures this snapshot sees are counted above: drop them (same snapshot, so
        -- exactly those) and queue their users' profiles for a recompute instead.
        drained AS (DELETE FROM recvector.pending_interactions RETURNING user_id),
        requeued AS (INSERT INTO recvector.queue (kind, key)
                     SELECT DISTINCT 'profile', user_id FROM drained ORDER BY 2
                     ON CONFLICT (kind, key) DO NOTHING)
        INSERT INTO recvector.rec_entity_stats AS s (entity_id, feedback_counts, popularity, version)
        SELECT entity_id, fc, pop, 1 FROM agg ORDER BY entity_id
        ON CONFLICT (entity_id) DO UPDATE
            SET feedback_counts = excluded.feedback_counts, popularity = excluded.popularity,
                version = s.version + 1, updated_at = now()
            WHERE (s.feedback_counts, s.popularity) IS DISTINCT FROM (excluded.feedback_counts, excluded.popularity)
        $q$, m.compiled ->> 'all_interactions')
    USING m.compiled -> 'params';
    SELECT count(*) INTO n FROM recvector.rec_entity_stats;
    RETURN n;
END
$$;
COMMENT ON FUNCTION recvector.rebuild_entity_stats() IS
  'Recounts rec_entity_stats (feedback counts per kind, popularity) from every mapped interaction; deferred captures it has counted leave recvector.pending_interactions and their users are queued for a profile recompute. Returns the number of entities with stats.';

CREATE OR REPLACE FUNCTION recvector.rebuild_profiles()
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m recvector.mapping := recvector._mapping();
    users text[];
    u text;
    failed integer := 0;
    first_error text;
BEGIN
    PERFORM recvector._check_columns(m.compiled -> 'columns');
    EXECUTE format('SELECT array_agg(DISTINCT user_id ORDER BY user_id) FROM (%s) AS t', m.compiled ->> 'all_interactions')
    INTO users USING m.compiled -> 'params';
    -- One user's failure (a lock held by the application, bad data) never stops the others: it is
    -- rolled back alone and the user is queued for the worker.
    FOREACH u IN ARRAY coalesce(users, '{}') LOOP
        BEGIN
            PERFORM recvector.update_user_profile(u);
        EXCEPTION WHEN OTHERS THEN
            failed := failed + 1;
            first_error := coalesce(first_error, format('user %s: %s', u, SQLERRM));
            PERFORM recvector._queue_quietly('profile', u, SQLERRM);
        END;
    END LOOP;
    IF failed > 0 THEN
        RAISE WARNING 'recvector: % of % profiles could not be rebuilt now and are queued for recvector.process_queue() (first: %)',
            failed, cardinality(users), first_error;
    END IF;
    RETURN coalesce(cardinality(users), 0) - failed;
END
$$;
COMMENT ON FUNCTION recvector.rebuild_profiles() IS
  'Recomputes the profile of every user who has interactions (in user_id order); a user whose recompute fails (a row locked by the application, bad data) is rolled back alone, queued for the worker, and reported in a WARNING. Returns the number of profiles rebuilt.';
