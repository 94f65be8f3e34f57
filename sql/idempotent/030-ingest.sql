-- Write path: every interaction, from a trigger or recvector.log_interaction(), goes through
-- recvector._ingest() in the app's own transaction. It is set-based and cheap: counters, entity
-- stats, and either an O(D) incremental nudge or a queue entry; never an embedding call.
--
-- Lock order (documented in docs/reliability.md): profile rows in user_id order, then entity stat
-- rows in entity_id order, then queue rows in user_id order.

CREATE OR REPLACE FUNCTION recvector._ingest(evs recvector.interaction[], mapping recvector.mapping DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m recvector.mapping := coalesce(mapping, recvector._mapping());
    strategy text := m.document -> 'aggregation' ->> 'strategy';
    threshold integer := (m.document -> 'aggregation' ->> 'batch_threshold')::integer;
    refresh_every integer := (m.document -> 'aggregation' ->> 'full_refresh_every')::integer;
    hl double precision := (m.compiled -> 'aggregation' ->> 'half_life_seconds')::double precision;
BEGIN
    IF evs IS NULL OR cardinality(evs) = 0 THEN
        RETURN 0;
    END IF;

    -- 1. Per-user counters (takes the profile row locks, in user_id order).
    INSERT INTO recvector.rec_user_profiles AS p (user_id, interaction_count_since_update)
    SELECT e.user_id, count(*)::integer FROM unnest(evs) AS e GROUP BY e.user_id ORDER BY e.user_id
    ON CONFLICT (user_id) DO UPDATE
        SET interaction_count_since_update = p.interaction_count_since_update + excluded.interaction_count_since_update;

    -- 2. Per-entity feedback counts and popularity (entity_id order).
    INSERT INTO recvector.rec_entity_stats AS s (entity_id, feedback_counts, popularity, version)
    SELECT x.entity_id, jsonb_object_agg(x.kind, x.cnt ORDER BY x.kind), sum(x.pos)::double precision, 1
    FROM (SELECT e.entity_id, e.kind, count(*) AS cnt, count(*) FILTER (WHERE e.weight > 0) AS pos
          FROM unnest(evs) AS e GROUP BY e.entity_id, e.kind) AS x
    GROUP BY x.entity_id ORDER BY x.entity_id
    ON CONFLICT (entity_id) DO UPDATE
        -- recvector._add_counts, written out: a sub-select here is planned with the statement.
        SET feedback_counts = s.feedback_counts
                || (SELECT jsonb_object_agg(c.key, c.value::numeric + coalesce((s.feedback_counts ->> c.key)::numeric, 0))
                    FROM jsonb_each_text(excluded.feedback_counts) AS c),
            popularity = s.popularity + excluded.popularity,
            version = s.version + 1,
            updated_at = now();

    IF strategy = 'incremental' THEN
        -- 3a. O(D) moving-average nudge, exactly equivalent to folding the events one by one:
        --     t_ref = max(last_interaction_at, newest event)
        --     old   = accumulated_weight * decay(last_interaction_at -> t_ref)
        --     new   = (old * profile + sum(w_j d_j v_j)) / (old + sum(|w_j| d_j))
        UPDATE recvector.rec_user_profiles AS p
        SET embedding = CASE WHEN u.old_w + u.a > 0 THEN
                            recvector._scale(
                                CASE WHEN p.embedding IS NULL OR recvector._scale(p.embedding, u.old_w) IS NULL THEN u.s
                                     WHEN u.s IS NULL THEN recvector._scale(p.embedding, u.old_w)
                                     ELSE recvector._scale(p.embedding, u.old_w) + u.s END,
                                1.0 / (u.old_w + u.a))
                            ELSE p.embedding END,
            accumulated_weight = u.old_w + u.a,
            last_interaction_at = u.t_ref,
            version = p.version + 1,
            last_updated = now()
        FROM (
            SELECT ev.user_id, t.t_ref,
                   CASE WHEN t.emb_null THEN 0 ELSE t.acc * recvector._decay(t.last_at, t.t_ref, hl) END AS old_w,
                   sum(recvector._scale(ev.embedding, ev.weight * recvector._decay(ev.occurred_at, t.t_ref, hl))) AS s,
                   sum(abs(ev.weight) * recvector._decay(ev.occurred_at, t.t_ref, hl)) AS a
            FROM (SELECT e.user_id, e.weight, e.occurred_at, v.embedding
                  FROM unnest(evs) AS e JOIN recvector.entity_vectors AS v ON v.entity_id = e.entity_id
                  WHERE e.weight <> 0) AS ev
            JOIN (SELECT e2.user_id, max(pp.accumulated_weight) AS acc, max(pp.last_interaction_at) AS last_at,
                         bool_and(pp.embedding IS NULL) AS emb_null,
                         greatest(max(e2.occurred_at), max(pp.last_interaction_at)) AS t_ref
                  FROM unnest(evs) AS e2 JOIN recvector.rec_user_profiles AS pp ON pp.user_id = e2.user_id
                  GROUP BY e2.user_id) AS t ON t.user_id = ev.user_id
            GROUP BY ev.user_id, t.t_ref, t.emb_null, t.acc, t.last_at
        ) AS u
        WHERE p.user_id = u.user_id;

        -- Periodic full refresh corrects drift (history limit, entity re-embeds).
        INSERT INTO recvector.queue (kind, key)
        SELECT 'profile', p.user_id FROM recvector.rec_user_profiles AS p
        WHERE p.user_id IN (SELECT e.user_id FROM unnest(evs) AS e)
          AND p.interaction_count_since_update >= refresh_every
        ORDER BY p.user_id
        ON CONFLICT (kind, key) DO NOTHING;
    ELSE
        -- 3b. full: queue a recompute at the batch threshold, or at once for a user with no profile yet.
        INSERT INTO recvector.queue (kind, key)
        SELECT 'profile', p.user_id FROM recvector.rec_user_profiles AS p
        WHERE p.user_id IN (SELECT e.user_id FROM unnest(evs) AS e)
          AND (p.interaction_count_since_update >= threshold OR p.embedding IS NULL)
        ORDER BY p.user_id
        ON CONFLICT (kind, key) DO NOTHING;
    END IF;
    RETURN cardinality(evs);
END
$$;
COMMENT ON FUNCTION recvector._ingest(recvector.interaction[], recvector.mapping) IS
  'Internal: records interactions set-based: user counters, entity stats, then the incremental nudge or a queued full recompute (mapping: the loaded mapping row when the caller has read it already).';

-- recvector._capture_interactions(), the auto-logging trigger, is written by recvector._write_capture()
-- (015-mapped.sql) from the loaded mapping.

CREATE OR REPLACE FUNCTION recvector.retry_failed(max_items integer DEFAULT 100)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m recvector.mapping := recvector._mapping();
    f record;
    q text;
    evs recvector.interaction[];
    done integer := 0;
BEGIN
    FOR f IN SELECT * FROM recvector.failed_interactions ORDER BY id LIMIT max_items FOR UPDATE SKIP LOCKED LOOP
        BEGIN
            q := m.compiled -> 'sources' -> f.source ->> 'retry';
            IF q IS NULL THEN
                RAISE EXCEPTION 'source "%" is not in the loaded mapping', f.source USING ERRCODE = 'undefined_object';
            END IF;
            EXECUTE 'SELECT array_agg(ROW(user_id, entity_id, kind, weight, occurred_at)::recvector.interaction) FROM ('
                    || q || ') AS t'
            INTO evs USING m.compiled -> 'params', f.rows;
            PERFORM recvector._ingest(evs, m);
            DELETE FROM recvector.failed_interactions WHERE id = f.id;
            done := done + 1;
        EXCEPTION WHEN OTHERS THEN
            UPDATE recvector.failed_interactions SET attempts = attempts + 1, error = SQLERRM, error_code = SQLSTATE
            WHERE id = f.id;
        END;
    END LOOP;
    RETURN done;
END
$$;
COMMENT ON FUNCTION recvector.retry_failed(integer) IS
  'Records again the interactions kept in recvector.failed_interactions (oldest first, up to max_items batches); a batch that fails again stays with attempts and error updated. Returns the batches recorded.';

CREATE OR REPLACE FUNCTION recvector.enable_auto_logging(source text DEFAULT NULL)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    m recvector.mapping := recvector._mapping();
    s record;
    tname name;
    rel regclass;
    found_any boolean := false;
BEGIN
    FOR s IN SELECT key AS name, value ->> 'table' AS tbl FROM jsonb_each(m.compiled -> 'sources') ORDER BY key LOOP
        CONTINUE WHEN enable_auto_logging.source IS NOT NULL AND s.name <> enable_auto_logging.source;
        found_any := true;
        tname := ('recvector_' || s.name)::name;
        rel := format('%I.%I', split_part(s.tbl, '.', 1), substr(s.tbl, length(split_part(s.tbl, '.', 1)) + 2))::regclass;
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = rel AND tgname = tname) THEN
            EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows '
                           'FOR EACH STATEMENT EXECUTE FUNCTION recvector._capture_interactions(%L)',
                           tname, rel, s.name);
        END IF;
        INSERT INTO recvector.triggers (source, table_oid, trigger_name) VALUES (s.name, rel, tname)
        ON CONFLICT (source) DO UPDATE SET table_oid = excluded.table_oid, trigger_name = excluded.trigger_name;
        RETURN NEXT format('%s on %s', tname, rel);
    END LOOP;
    IF NOT found_any THEN
        RAISE EXCEPTION 'interaction source "%" is not in the loaded mapping', enable_auto_logging.source
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Call recvector.enable_auto_logging() with no argument for every source, or use a name from $.interactions[*].name.';
    END IF;
END
$$;
COMMENT ON FUNCTION recvector.enable_auto_logging(text) IS
  'Opt-in: adds a statement-level AFTER INSERT trigger (recvector_<source>) to each mapped interaction table, or to the one named, so that inserts update profiles with no application change. Returns the triggers.';

CREATE OR REPLACE FUNCTION recvector.disable_auto_logging(source text DEFAULT NULL)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM recvector.triggers WHERE disable_auto_logging.source IS NULL OR triggers.source = disable_auto_logging.source
             ORDER BY triggers.source LOOP
        IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = t.table_oid AND tgname = t.trigger_name) THEN
            EXECUTE format('DROP TRIGGER %I ON %s', t.trigger_name, t.table_oid);
        END IF;
        DELETE FROM recvector.triggers WHERE triggers.source = t.source;
        RETURN NEXT format('%s on %s', t.trigger_name, t.table_oid);
    END LOOP;
END
$$;
COMMENT ON FUNCTION recvector.disable_auto_logging(text) IS
  'Removes the auto-logging triggers RecVector added (all, or the named source''s). Returns the triggers removed.';

CREATE OR REPLACE FUNCTION recvector.log_interaction(
    user_id text, entity_id text, kind text DEFAULT 'interaction',
    occurred_at timestamptz DEFAULT now(), weight double precision DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    m recvector.mapping := recvector._mapping();
    w double precision;
BEGIN
    IF user_id IS NULL OR entity_id IS NULL OR kind IS NULL OR occurred_at IS NULL THEN
        RAISE EXCEPTION 'recvector.log_interaction: user_id, entity_id, kind and occurred_at must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    w := coalesce(weight,
                  (m.document -> 'events' -> 'weights' ->> kind)::double precision,
                  (m.document -> 'events' ->> 'default_weight')::double precision,
                  1.0);
    IF w = 'NaN'::double precision OR w IN ('Infinity', '-Infinity') THEN
        RAISE EXCEPTION 'recvector.log_interaction: weight must be a finite number, got %', w
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO recvector.events (user_id, entity_id, kind, weight, occurred_at)
    VALUES (user_id, entity_id, kind, w, occurred_at);
    IF m.document -> 'aggregation' ->> 'capture' = 'deferred' THEN
        INSERT INTO recvector.pending_interactions (user_id, entity_id, kind, weight, occurred_at)
        VALUES (user_id, entity_id, kind, w, occurred_at);
    ELSE
        PERFORM recvector._ingest(ARRAY[ROW(user_id, entity_id, kind, w, occurred_at)::recvector.interaction], m);
    END IF;
END
$$;
COMMENT ON FUNCTION recvector.log_interaction(text, text, text, timestamptz, double precision) IS
  'Records an interaction the application does not store itself (kept in recvector.events). Weight: the argument, else $.events.weights[kind], else $.events.default_weight, else 1.';

CREATE OR REPLACE FUNCTION recvector.log_interaction(
    user_id bigint, entity_id bigint, kind text DEFAULT 'interaction',
    occurred_at timestamptz DEFAULT now(), weight double precision DEFAULT NULL)
RETURNS void
LANGUAGE sql AS $$
    SELECT recvector.log_interaction(user_id::text, entity_id::text, kind, occurred_at, weight)
$$;
COMMENT ON FUNCTION recvector.log_interaction(bigint, bigint, text, timestamptz, double precision) IS
  'Integer-id form of recvector.log_interaction(text, text, ...).';

CREATE OR REPLACE FUNCTION recvector.fold_pending(max_rows integer DEFAULT 10000)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    evs recvector.interaction[];
BEGIN
    IF max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION 'max_rows must be a positive integer, got %', max_rows USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Rows are only ever inserted and deleted, so a locked row's ctid is stable: take up to max_rows
    -- that no other worker holds, delete them and record them in one _ingest call. If recording
    -- fails, the deletion rolls back with it and the rows stay for the next call.
    WITH taken AS (
        DELETE FROM recvector.pending_interactions
        WHERE ctid = ANY (ARRAY(SELECT p.ctid FROM recvector.pending_interactions AS p
                                LIMIT max_rows FOR UPDATE SKIP LOCKED))
        RETURNING user_id, entity_id, kind, weight, occurred_at)
    SELECT array_agg(ROW(t.user_id, t.entity_id, t.kind, t.weight, t.occurred_at)::recvector.interaction)
    INTO evs FROM taken AS t;
    IF evs IS NULL THEN
        RETURN 0;
    END IF;
    RETURN recvector._ingest(evs);
END
$$;
COMMENT ON FUNCTION recvector.fold_pending(integer) IS
  'Folds up to max_rows interactions captured with aggregation.capture = deferred (recvector.pending_interactions) into the user counters, entity stats and profiles, exactly as an immediate capture would have; rows another worker holds are skipped. Run by recvector.process_queue(). Returns the number folded.';

CREATE OR REPLACE FUNCTION recvector.process_queue(max_items integer DEFAULT 100)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m recvector.mapping := recvector._mapping();
    fallback double precision := (m.compiled -> 'aggregation' ->> 'time_fallback_seconds')::double precision;
    r record;
    done integer := 0;
    entity_ids bigint[];
    entity_keys text[];
BEGIN
    IF max_items IS NULL OR max_items < 1 THEN
        RAISE EXCEPTION 'max_items must be a positive integer, got %', max_items USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Deferred captures first, so that the recomputes below see their counters.
    IF EXISTS (SELECT 1 FROM recvector.pending_interactions) THEN
        BEGIN
            done := done + recvector.fold_pending(least(max_items::bigint * 100, 2147483647)::integer);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'recvector: folding deferred interactions failed: %', SQLERRM
                USING HINT = 'They stay in recvector.pending_interactions; SELECT recvector.fold_pending() shows the error.';
        END;
    END IF;

    -- Time fallback: pending interactions older than aggregation.time_fallback get their recompute too.
    INSERT INTO recvector.queue (kind, key)
    SELECT 'profile', p.user_id FROM recvector.rec_user_profiles AS p
    WHERE p.interaction_count_since_update > 0
      AND p.last_updated < now() - make_interval(secs => fallback)
    ORDER BY p.user_id
    ON CONFLICT (kind, key) DO NOTHING;

    -- Queued entities (recvector.enable_entity_sync) are re-embedded together, in one call.
    IF to_regprocedure('recvector.refresh_entities(text[])') IS NOT NULL THEN
        SELECT array_agg(q.id), array_agg(q.key) INTO entity_ids, entity_keys
        FROM (SELECT q.id, q.key FROM recvector.queue AS q WHERE q.kind = 'entity' AND q.attempts < 5
              ORDER BY q.id LIMIT max_items FOR UPDATE SKIP LOCKED) AS q;
    END IF;
    -- (Without PL/Python, in a plain-SQL install, `recvector worker` embeds them outside the database.)
    IF entity_ids IS NOT NULL THEN
        BEGIN
            EXECUTE 'SELECT recvector.refresh_entities($1)' USING entity_keys;
            DELETE FROM recvector.queue WHERE id = ANY (entity_ids);
            done := done + cardinality(entity_ids);
        EXCEPTION WHEN OTHERS THEN
            UPDATE recvector.queue SET attempts = attempts + 1, last_error = SQLERRM WHERE id = ANY (entity_ids);
            RAISE WARNING 'recvector: re-embedding % queued entities failed: %', cardinality(entity_ids), SQLERRM;
        END;
    END IF;

    FOR r IN SELECT q.id, q.key FROM recvector.queue AS q
             WHERE q.kind = 'profile' AND q.attempts < 5
             ORDER BY q.id LIMIT max_items FOR UPDATE SKIP LOCKED LOOP
        BEGIN
            PERFORM recvector.update_user_profile(r.key);
            DELETE FROM recvector.queue WHERE id = r.id;
            done := done + 1;
        EXCEPTION WHEN OTHERS THEN
            UPDATE recvector.queue SET attempts = attempts + 1, last_error = SQLERRM WHERE id = r.id;
            RAISE WARNING 'recvector: profile update for user % failed: %', r.key, SQLERRM;
        END;
    END LOOP;
    RETURN done;
END
$$;
COMMENT ON FUNCTION recvector.process_queue(integer) IS
  'Folds up to 100 x max_items deferred interactions (recvector.fold_pending), then drains up to max_items queued entities (re-embedded in one call) and up to max_items queued profile recomputes (FOR UPDATE SKIP LOCKED, so several workers can run), after queuing users past the time fallback. Failed items stay with attempts and last_error (given up after 5). Returns the number done (interactions folded + entities + profiles). Schedule it with pg_cron or run `recvector worker`.';

CREATE OR REPLACE FUNCTION recvector.status()
RETURNS TABLE (version text, mapping_loaded_at timestamptz, strategy text, capture text, model text,
               entity_vectors bigint, profiles bigint, pending_interactions bigint, oldest_pending interval,
               queued_profiles bigint, queued_entities bigint, given_up bigint, failed_interactions bigint,
               auto_logging text[])
LANGUAGE sql STABLE AS $$
    SELECT (SELECT e.extversion FROM pg_catalog.pg_extension AS e WHERE e.extname = 'recvector'),
           m.loaded_at,
           m.document -> 'aggregation' ->> 'strategy',
           coalesce(m.document -> 'aggregation' ->> 'capture', 'immediate'),
           m.compiled ->> 'model_id',
           (SELECT count(*) FROM recvector.entity_vectors),
           (SELECT count(*) FROM recvector.rec_user_profiles AS p WHERE p.embedding IS NOT NULL),
           (SELECT count(*) FROM recvector.pending_interactions),
           (SELECT now() - min(i.captured_at) FROM recvector.pending_interactions AS i),
           (SELECT count(*) FROM recvector.queue AS q WHERE q.kind = 'profile' AND q.attempts < 5),
           (SELECT count(*) FROM recvector.queue AS q WHERE q.kind = 'entity' AND q.attempts < 5),
           (SELECT count(*) FROM recvector.queue AS q WHERE q.attempts >= 5),
           (SELECT count(*) FROM recvector.failed_interactions),
           ARRAY(SELECT t.source || ' on ' || t.table_oid::regclass::text FROM recvector.triggers AS t ORDER BY t.source)
    FROM (SELECT 1) AS one LEFT JOIN recvector.mapping AS m ON m.id = 1
$$;
COMMENT ON FUNCTION recvector.status() IS
  'One row on the state of RecVector in this database: version, mapping (loaded when, strategy, capture, model), stored vectors and profiles, what waits for the worker (deferred interactions and the age of the oldest, queued profiles and entities, items given up after 5 attempts), interactions kept after a recording failure, and the auto-logging triggers. For monitoring: a growing oldest_pending or queue means the worker is not keeping up.';

-- Opt-in entity sync: statement-level triggers on the mapped entity table queue the ids of
-- inserted, updated and deleted rows; recvector.process_queue() re-embeds them (only when their
-- composed text changed) and drops the vectors of deleted ones.
CREATE OR REPLACE FUNCTION recvector._capture_entities()
RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    id_column text := TG_ARGV[0];
BEGIN
    BEGIN
        IF TG_OP = 'DELETE' THEN
            EXECUTE format('INSERT INTO recvector.queue (kind, key) SELECT DISTINCT ''entity'', CAST(r.%I AS text) '
                           'FROM old_rows AS r ORDER BY 2 ON CONFLICT (kind, key) DO NOTHING', id_column);
        ELSE
            EXECUTE format('INSERT INTO recvector.queue (kind, key) SELECT DISTINCT ''entity'', CAST(r.%I AS text) '
                           'FROM new_rows AS r ORDER BY 2 ON CONFLICT (kind, key) DO NOTHING', id_column);
        END IF;
    EXCEPTION WHEN OTHERS THEN
        IF coalesce(nullif(current_setting('recvector.strict', true), ''), 'off')::boolean THEN
            RAISE;
        END IF;
        RAISE WARNING 'recvector: could not queue changed entities of % (%); run SELECT recvector.sync()', TG_TABLE_NAME, SQLERRM;
    END;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION recvector._capture_entities() IS
  'Internal: statement-level trigger body on the entity table; queues the ids of inserted, updated or deleted entities for re-embedding.';

CREATE OR REPLACE FUNCTION recvector.enable_entity_sync()
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    m recvector.mapping := recvector._mapping();
    tbl text := m.document -> 'entities' ->> 'table';
    rel regclass;
    ev record;
BEGIN
    IF position('.' IN tbl) = 0 THEN
        tbl := 'public.' || tbl;
    END IF;
    rel := format('%I.%I', split_part(tbl, '.', 1), substr(tbl, length(split_part(tbl, '.', 1)) + 2))::regclass;
    FOR ev IN SELECT * FROM (VALUES ('insert', 'INSERT', 'NEW TABLE AS new_rows'),
                                    ('update', 'UPDATE', 'NEW TABLE AS new_rows'),
                                    ('delete', 'DELETE', 'OLD TABLE AS old_rows')) AS v(name, op, ref) LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = rel AND tgname = 'recvector_entities_' || ev.name) THEN
            EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s REFERENCING %s FOR EACH STATEMENT '
                           'EXECUTE FUNCTION recvector._capture_entities(%L)',
                           'recvector_entities_' || ev.name, ev.op, rel, ev.ref, m.document -> 'entities' ->> 'id');
        END IF;
        INSERT INTO recvector.triggers (source, table_oid, trigger_name)
        VALUES ('entities:' || ev.name, rel, 'recvector_entities_' || ev.name)
        ON CONFLICT (source) DO UPDATE SET table_oid = excluded.table_oid, trigger_name = excluded.trigger_name;
        RETURN NEXT format('recvector_entities_%s on %s', ev.name, rel);
    END LOOP;
END
$$;
COMMENT ON FUNCTION recvector.enable_entity_sync() IS
  'Opt-in: adds statement-level triggers on the mapped entity table that queue inserted, updated and deleted entities; recvector.process_queue() re-embeds those whose text changed. Changes in related feature tables are found by recvector.sync().';

CREATE OR REPLACE FUNCTION recvector.disable_entity_sync()
RETURNS SETOF text
LANGUAGE sql AS $$
    SELECT recvector.disable_auto_logging(source) FROM recvector.triggers
    WHERE source LIKE 'entities:%' ORDER BY source
$$;
COMMENT ON FUNCTION recvector.disable_entity_sync() IS 'Removes the entity-sync triggers. Returns the triggers removed.';
