-- Profiles: full recompute from the stored vectors of the last N interactions, with time decay.
--
--   d_i     = 0.5 ^ ((t_ref - t_i) / half_life),  t_ref = newest interaction with a vector
--   profile = sum(w_i * d_i * v_i) / sum(|w_i| * d_i)
--   accumulated_weight = sum(|w_i| * d_i)            (what the incremental strategy continues from)
--
-- Negative weights (dislikes) pull the profile away from those entities. No embedding call here:
-- only rows of recvector.entity_vectors are read.

CREATE OR REPLACE FUNCTION recvector._profile_from_history(
    p_user_id text, p_before timestamptz DEFAULT NULL, p_half_life_seconds double precision DEFAULT NULL,
    OUT embedding vector, OUT accumulated_weight double precision,
    OUT last_interaction_at timestamptz, OUT interactions integer)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    m recvector.mapping := recvector._mapping();
    hl double precision := coalesce(p_half_life_seconds, (m.compiled -> 'aggregation' ->> 'half_life_seconds')::double precision);
    lim integer := (m.document -> 'aggregation' ->> 'history_limit')::integer;
BEGIN
    WITH h AS (SELECT * FROM recvector._mapped_history(m.compiled -> 'params', p_user_id, lim,
                                                      recvector._id_or_null(p_user_id, m.compiled ->> 'user_id_type'),
                                                      p_before)),
        hv AS (SELECT h.weight, h.occurred_at, v.embedding
               FROM h JOIN recvector.entity_vectors v ON v.entity_id = h.entity_id
               WHERE h.weight <> 0),
        ref AS (SELECT max(occurred_at) AS t_ref, count(*)::integer AS n FROM hv),
        agg AS (SELECT @vector@.sum(recvector._scale(hv.embedding, hv.weight * recvector._decay(hv.occurred_at, ref.t_ref, hl))) AS s,
                       sum(abs(hv.weight) * recvector._decay(hv.occurred_at, ref.t_ref, hl)) AS a
                FROM hv, ref)
    SELECT CASE WHEN agg.a > 0 THEN recvector._scale(agg.s, 1.0 / agg.a) END, coalesce(agg.a, 0), ref.t_ref, ref.n
    INTO embedding, accumulated_weight, last_interaction_at, interactions
    FROM agg, ref;
END
$$;
COMMENT ON FUNCTION recvector._profile_from_history(text, timestamptz, double precision) IS
  'Internal: a user''s profile computed from the stored vectors of their last history_limit interactions (before p_before when given), time-decayed (with another half-life when given).';

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
        (user_id, embedding, accumulated_weight, last_interaction_at, interaction_count_since_update, version, last_updated)
    VALUES (update_user_profile.user_id, p.embedding, p.accumulated_weight, p.last_interaction_at, 0, 1, now())
    ON CONFLICT (user_id) DO UPDATE
        SET embedding = excluded.embedding,
            accumulated_weight = excluded.accumulated_weight,
            last_interaction_at = excluded.last_interaction_at,
            interaction_count_since_update = 0,
            version = r.version + 1,
            last_updated = now()
        -- (vectors compared as real[]: pgvector's = is not on RecVector's search_path)
        WHERE (r.embedding::real[], r.accumulated_weight, r.last_interaction_at, r.interaction_count_since_update)
              IS DISTINCT FROM (excluded.embedding::real[], excluded.accumulated_weight, excluded.last_interaction_at, 0);
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
