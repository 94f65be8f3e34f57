-- Item-to-item neighbours learnt from the application's own interactions: the collaborative source
-- of rec_recommend (docs/evaluation.md chooses the method and settings by evaluation).
--
--   source     the positive interactions (weight > 0) of every user, at most neighbors.history per
--              user (the most recent), one row per (user, entity): recvector.neighbor_source,
--              written at the start of a build (one scan of the mapped tables).
--   cosine     co-occurrence c_ij (users who liked both) with shrinkage:
--                  w_ij = c_ij / (n_i^a * n_j^(1-a) + shrink)      (a = 0.5: cosine)
--              the neighbors.k strongest j per i, computed set-based in SQL, entity chunk by entity
--              chunk (a build can be resumed, or spread over worker rounds).
--   ease       the closed-form linear model EASE (Steck, 2019) in numpy (PL/Python or the CLI), for
--              catalogues up to neighbors.ease_max_items entities with positives: B = -P / diag(P),
--              P = (X'X + lambda I)^-1, the neighbors.k largest weights of each row kept.
--
-- A user's collaborative score for entity i is the sum over the user's positive entities j
-- (weight x time decay) of w_ji, computed with the profile (recvector._profile_of) and kept in the
-- profile row (cf_candidates, cf_scores).

CREATE OR REPLACE FUNCTION recvector._neighbor_settings()
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('method', 'auto', 'history', 1000, 'shrink', 5.0, 'alpha', 0.9,
                              'ease_max_items', 12000, 'chunk', 2000, 'rebuild_every', '1 day')
           || coalesce((SELECT m.document -> 'neighbors' FROM recvector.mapping AS m WHERE m.id = 1), '{}')
$$;
COMMENT ON FUNCTION recvector._neighbor_settings() IS
  'Internal: the neighbors section of the loaded mapping over its defaults (method auto, history 1000, shrink 5, alpha 0.9, ease_max_items 12000; k 100; per_candidate 5 for cosine; ease_lambda the mean number of positive interactions per entity, at least 10).';

-- 1. The source: positive interactions, at most `history` per user, the most recent first (ties,
--    e.g. undated interactions, broken by a hash of user and entity: each user keeps a different
--    pseudo-random part, so no entity is systematically cut from every long history), from
--    the mapped tables (interactions NULL) or from a relation of (user_id, entity_id, weight,
--    occurred_at) rows (the evaluation's training part), into `target` (user_id, entity_id).
CREATE OR REPLACE FUNCTION recvector._neighbor_source(history integer, target text DEFAULT 'recvector.neighbor_source',
                                                     interactions text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    m recvector.mapping := recvector._mapping();
    n bigint;
BEGIN
    IF interactions IS NULL THEN
        PERFORM recvector._check_columns(m.compiled -> 'columns');
    END IF;
    EXECUTE format('TRUNCATE %s', target);
    EXECUTE format($q$
        INSERT INTO %s (user_id, entity_id)
        SELECT r.user_id, r.entity_id
        FROM (SELECT p.user_id, p.entity_id,
                     row_number() OVER (PARTITION BY p.user_id
                                        ORDER BY p.last_at DESC, hashtext(p.user_id::text || '/' || p.entity_id), p.entity_id) AS rn
              FROM (SELECT t.user_id, t.entity_id, max(t.occurred_at) AS last_at
                    FROM (%s) AS t
                    GROUP BY t.user_id, t.entity_id
                    HAVING sum(t.weight) > 0) AS p) AS r
        WHERE r.rn <= $2
        ORDER BY r.entity_id, r.user_id $q$, target,
        coalesce('SELECT user_id, entity_id, weight, occurred_at FROM ' || interactions, m.compiled ->> 'all_interactions'))
    USING m.compiled -> 'params', history;
    GET DIAGNOSTICS n = ROW_COUNT;
    EXECUTE format('ANALYZE %s', target);
    RETURN n;
END
$$;
COMMENT ON FUNCTION recvector._neighbor_source(integer, text, text) IS
  'Internal: fills target (recvector.neighbor_source by default) with every user''s positive entities (net weight > 0), at most history per user, the most recent first, from the mapped tables or the given relation of interactions. Returns the rows written.';

-- 2. Cosine neighbours of one chunk of entities (ids after `after`, in order), from a source into
--    a neighbour relation (RecVector's, or the evaluation's).
CREATE OR REPLACE FUNCTION recvector._cosine_neighbors_chunk(after text, chunk integer, k integer, shrink double precision,
                                                            alpha double precision, started timestamptz,
                                                            src text DEFAULT 'recvector.neighbor_source',
                                                            target text DEFAULT 'recvector.item_neighbors')
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    ids text[];
BEGIN
    EXECUTE format('SELECT ARRAY(SELECT DISTINCT s.entity_id FROM %s AS s WHERE $1 IS NULL OR s.entity_id > $1 '
                   'ORDER BY s.entity_id LIMIT $2)', src)
    INTO ids USING after, chunk;
    IF cardinality(ids) = 0 THEN
        RETURN NULL;
    END IF;
    EXECUTE format($q$
        WITH counts AS (
            SELECT s.entity_id, count(*)::double precision AS n FROM %1$s AS s GROUP BY s.entity_id),
        pairs AS (
            SELECT a.entity_id AS i, b.entity_id AS j, count(*)::double precision AS c
            FROM %1$s AS a
            JOIN %1$s AS b ON b.user_id = a.user_id AND b.entity_id <> a.entity_id
            WHERE a.entity_id = ANY ($1)
            GROUP BY a.entity_id, b.entity_id),
        scored AS (
            SELECT p.i, p.j, p.c / (power(ci.n, $4) * power(cj.n, 1 - $4) + $3) AS w
            FROM pairs AS p JOIN counts AS ci ON ci.entity_id = p.i JOIN counts AS cj ON cj.entity_id = p.j),
        ranked AS (
            SELECT s.i, s.j, s.w, row_number() OVER (PARTITION BY s.i ORDER BY s.w DESC, s.j) AS rn FROM scored AS s)
        INSERT INTO %2$s AS nb (entity_id, neighbor_ids, weights, method, built_at)
        SELECT r.i, array_agg(r.j ORDER BY r.rn), array_agg(r.w::real ORDER BY r.rn), 'cosine', $5
        FROM ranked AS r WHERE r.rn <= $2
        GROUP BY r.i
        ORDER BY r.i
        ON CONFLICT (entity_id) DO UPDATE
            SET neighbor_ids = excluded.neighbor_ids, weights = excluded.weights, method = excluded.method,
                built_at = excluded.built_at $q$, src, target)
    USING ids, k, shrink, alpha, started;
    RETURN ids[cardinality(ids)];
END
$$;
COMMENT ON FUNCTION recvector._cosine_neighbors_chunk(text, integer, integer, double precision, double precision, timestamptz, text, text) IS
  'Internal: writes the k strongest co-occurrence neighbours (w = c / (n_i^alpha n_j^(1-alpha) + shrink)) of the next chunk of source entities after the given id into target; returns the last id done, NULL when none was left.';

-- Start a build: the source, and the build's row. Returns the settings used. EASE's lambda, unless
-- set, is the mean number of positive interactions per entity (at least 10): regularisation on
-- the scale of the Gram matrix's diagonal (on the anime data, 50 and 100 are equally good, 200
-- costs 0.006 NDCG@10 and 500 costs 0.025: bench/evaluation/README.md).
CREATE OR REPLACE FUNCTION recvector._start_neighbor_build(method text DEFAULT NULL, ease_outside boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    s jsonb := recvector._neighbor_settings();
    chosen text := coalesce(method, s ->> 'method');
    rows bigint;
    items bigint;
BEGIN
    IF chosen NOT IN ('auto', 'cosine', 'ease') THEN
        RAISE EXCEPTION 'neighbour method must be auto, cosine or ease, got %', quote_literal(chosen)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    rows := recvector._neighbor_source((s ->> 'history')::integer);
    SELECT count(DISTINCT entity_id) INTO items FROM recvector.neighbor_source;
    IF chosen = 'auto' THEN
        chosen := CASE WHEN items <= (s ->> 'ease_max_items')::bigint
                             AND (ease_outside OR recvector._has_ease())
                       THEN 'ease' ELSE 'cosine' END;
    ELSIF chosen = 'ease' AND items > (s ->> 'ease_max_items')::bigint THEN
        RAISE EXCEPTION 'EASE is offered up to % entities with positive interactions; this catalogue has %',
            s ->> 'ease_max_items', items
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'Use the cosine method (neighbors.method = cosine), or raise neighbors.ease_max_items if the server has the memory: 8 x entities^2 bytes, twice.';
    END IF;
    -- Neighbours kept per entity: 100. More is not better for EASE: the serving sum over a user's
    -- entities of truncated rows drops the many small weights unevenly (on the anime data, the 50 or
    -- 100 largest |B| per row match the full model, 300 lose 0.015 NDCG@10: docs/evaluation.md).
    s := s || jsonb_build_object('k', coalesce((s ->> 'k')::integer, 100),
                                 'ease_lambda', coalesce((s ->> 'ease_lambda')::double precision,
                                                         greatest(10, round(rows::numeric / greatest(items, 1), 1))));
    INSERT INTO recvector.neighbor_builds AS b (id, method, settings, started_at, finished_at, entities, done, resume_after)
    VALUES (1, chosen, s || jsonb_build_object('source_rows', rows), clock_timestamp(), NULL, items, 0, NULL)
    ON CONFLICT (id) DO UPDATE SET method = excluded.method, settings = excluded.settings,
        started_at = excluded.started_at, finished_at = NULL, entities = excluded.entities, done = 0, resume_after = NULL;
    RETURN s || jsonb_build_object('method', chosen, 'entities', items, 'source_rows', rows);
END
$$;
COMMENT ON FUNCTION recvector._start_neighbor_build(text, boolean) IS
  'Internal: starts a neighbour build: fills recvector.neighbor_source and records the build (method auto = ease when the catalogue is small enough and numpy is at hand: PL/Python, or the CLI outside the database with ease_outside; else cosine).';

CREATE OR REPLACE FUNCTION recvector._has_ease()
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT pg_catalog.to_regprocedure('recvector._ease_model(double precision,integer,timestamp with time zone,text,text)') IS NOT NULL
$$;
COMMENT ON FUNCTION recvector._has_ease() IS 'Internal: true when EASE can be built inside the database (PL/Python).';

-- The end of a build: neighbours of entities that no longer have positive interactions go.
CREATE OR REPLACE FUNCTION recvector._finish_neighbor_build()
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := (SELECT b.started_at FROM recvector.neighbor_builds AS b WHERE b.id = 1);
BEGIN
    DELETE FROM recvector.item_neighbors AS nb WHERE nb.built_at < started;
    -- (now(): profiles recomputed later in this transaction count as up to date with these neighbours)
    UPDATE recvector.neighbor_builds SET finished_at = now(), done = entities, resume_after = NULL WHERE id = 1;
    TRUNCATE recvector.neighbor_source;
END
$$;
COMMENT ON FUNCTION recvector._finish_neighbor_build() IS
  'Internal: ends the running neighbour build: removes neighbours of entities without positives (older than the build), marks it finished, empties the source.';

-- One step of the running build: a chunk of cosine neighbours, or the whole EASE model. Returns
-- true when the build is finished (and then swaps in the new neighbours), NULL when another
-- transaction is doing the step (only with wait => false: the worker never waits).
CREATE OR REPLACE FUNCTION recvector._neighbor_build_step(wait boolean DEFAULT true)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    b recvector.neighbor_builds;
    last_id text;
    done_now bigint;
BEGIN
    IF wait THEN
        SELECT * INTO b FROM recvector.neighbor_builds WHERE id = 1 FOR UPDATE;
    ELSE
        SELECT * INTO b FROM recvector.neighbor_builds WHERE id = 1 FOR UPDATE SKIP LOCKED;
        IF NOT FOUND AND EXISTS (SELECT 1 FROM recvector.neighbor_builds WHERE id = 1) THEN
            RETURN NULL;
        END IF;
    END IF;
    IF NOT FOUND OR b.finished_at IS NOT NULL THEN
        RETURN true;
    END IF;
    IF b.method = 'ease' THEN
        EXECUTE 'SELECT recvector._ease_model($1, $2, $3)'
        USING (b.settings ->> 'ease_lambda')::double precision, (b.settings ->> 'k')::integer, b.started_at;
        last_id := NULL;
    ELSE
        last_id := recvector._cosine_neighbors_chunk(b.resume_after, (b.settings ->> 'chunk')::integer,
                                                     (b.settings ->> 'k')::integer, (b.settings ->> 'shrink')::double precision,
                                                     (b.settings ->> 'alpha')::double precision, b.started_at);
    END IF;
    IF last_id IS NOT NULL THEN
        SELECT count(DISTINCT s.entity_id) INTO done_now FROM recvector.neighbor_source AS s WHERE s.entity_id <= last_id;
        IF done_now < b.entities THEN
            UPDATE recvector.neighbor_builds SET resume_after = last_id, done = done_now WHERE id = 1;
            RETURN false;
        END IF;
    END IF;
    PERFORM recvector._finish_neighbor_build();
    RETURN true;
END
$$;
COMMENT ON FUNCTION recvector._neighbor_build_step(boolean) IS
  'Internal: does the next step of the running neighbour build (a chunk of cosine neighbours, or the EASE model at once); at the end removes neighbours of entities without positives and marks the build finished. Returns true when finished.';

CREATE OR REPLACE FUNCTION recvector.rebuild_neighbors(method text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    s jsonb;
    steps integer := 0;
    t0 timestamptz := clock_timestamp();
BEGIN
    s := recvector._start_neighbor_build(method);
    RAISE NOTICE 'recvector: building % neighbours of % entities from % positive interactions',
        s ->> 'method', s ->> 'entities', s ->> 'source_rows';
    WHILE NOT recvector._neighbor_build_step() LOOP
        steps := steps + 1;
        RAISE NOTICE 'recvector: neighbours: % of % entities', (SELECT done FROM recvector.neighbor_builds WHERE id = 1),
            s ->> 'entities';
    END LOOP;
    RETURN s || jsonb_build_object('neighbors', (SELECT count(*) FROM recvector.item_neighbors),
                                   'seconds', round(extract(epoch FROM clock_timestamp() - t0)::numeric, 3));
END
$$;
COMMENT ON FUNCTION recvector.rebuild_neighbors(text) IS
  'Builds the item-to-item neighbours (the collaborative source) from every user''s positive interactions (at most neighbors.history per user, the most recent): cosine co-occurrence with shrinkage in SQL, or EASE (numpy, catalogues up to neighbors.ease_max_items); method NULL = the mapping''s (auto: EASE when small enough). One transaction; run by bootstrap(), and by the worker every neighbors.rebuild_every. Progress as NOTICEs. Returns the settings and counts.';

CREATE OR REPLACE PROCEDURE recvector.rebuild_neighbors_resumable(method text DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    b recvector.neighbor_builds;
BEGIN
    -- (A procedure cannot have a fixed search_path: every name here is qualified.)
    SELECT * INTO b FROM recvector.neighbor_builds WHERE id = 1;
    IF NOT FOUND OR b.finished_at IS NOT NULL OR NOT EXISTS (SELECT 1 FROM recvector.neighbor_source) THEN
        PERFORM recvector._start_neighbor_build(method);
        COMMIT;
    END IF;
    WHILE NOT recvector._neighbor_build_step() LOOP
        RAISE NOTICE 'recvector: neighbours: % of % entities',
            (SELECT nb.done FROM recvector.neighbor_builds AS nb WHERE nb.id = 1),
            (SELECT nb.entities FROM recvector.neighbor_builds AS nb WHERE nb.id = 1);
        COMMIT;
    END LOOP;
    COMMIT;
END
$$;
COMMENT ON PROCEDURE recvector.rebuild_neighbors_resumable(text) IS
  'Like recvector.rebuild_neighbors() but commits after every chunk of entities (CALL it outside a transaction block): interrupt it and CALL it again to continue the same build.';

-- The worker's part (recvector.process_queue): once neighbours have been built, build them again
-- every neighbors.rebuild_every, one step (a chunk, or the EASE model) per round.
CREATE OR REPLACE FUNCTION recvector._neighbor_worker_step()
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    b recvector.neighbor_builds;
BEGIN
    SELECT * INTO b FROM recvector.neighbor_builds WHERE id = 1;
    IF NOT FOUND THEN
        RETURN false;  -- never built: bootstrap() or rebuild_neighbors() builds them first
    END IF;
    IF b.method = 'ease' AND NOT recvector._has_ease() THEN
        RETURN false;  -- a plain-SQL install: `recvector worker` rebuilds EASE outside the database
    END IF;
    IF b.finished_at IS NOT NULL THEN
        IF b.finished_at > now() - make_interval(secs => coalesce(
               (SELECT (m.compiled -> 'neighbors' ->> 'rebuild_every_seconds')::double precision
                FROM recvector.mapping AS m WHERE m.id = 1), 86400)) THEN
            RETURN false;
        END IF;
        IF NOT pg_try_advisory_xact_lock(pg_catalog.hashtext('recvector.neighbor_build')) THEN
            RETURN false;  -- another worker is starting it
        END IF;
        PERFORM recvector._start_neighbor_build(b.method);
    END IF;
    RETURN recvector._neighbor_build_step(wait => false) IS NOT NULL;
END
$$;
COMMENT ON FUNCTION recvector._neighbor_worker_step() IS
  'Internal: the worker''s neighbour upkeep: when the last build is older than neighbors.rebuild_every, start a new one with the same method; do one step of a running build (never waiting for another worker). Returns true when it did something.';
