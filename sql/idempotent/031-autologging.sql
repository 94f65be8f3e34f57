-- Auto-logging: opt-in statement triggers on the mapped interaction tables (the trigger function
-- itself, recvector._capture_interactions(), is written by recvector._write_capture() from the
-- loaded mapping, 015-mapped.sql), and the interactions they could not record.

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

-- Interactions a trigger could not record are replayed by the worker (process_queue, with backoff)
-- or by an admin (retry_failed, all of them now).
CREATE OR REPLACE FUNCTION recvector._retry_failed(max_items integer, only_due boolean)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m recvector.mapping := recvector._mapping();
    f record;
    q text;
    evs recvector.interaction[];
    done integer := 0;
BEGIN
    FOR f IN SELECT * FROM recvector.failed_interactions AS fi
             WHERE NOT only_due OR fi.next_attempt_at <= now()
             ORDER BY fi.id LIMIT max_items FOR UPDATE SKIP LOCKED LOOP
        BEGIN
            q := m.compiled -> 'sources' -> f.source ->> 'retry';
            IF q IS NULL THEN
                RAISE EXCEPTION 'source "%" is not in the loaded mapping', f.source USING ERRCODE = 'undefined_object';
            END IF;
            PERFORM recvector._check_columns(m.compiled -> 'sources' -> f.source -> 'columns');
            EXECUTE 'SELECT array_agg(ROW(user_id, entity_id, kind, weight, occurred_at)::recvector.interaction) FROM ('
                    || q || ') AS t'
            INTO evs USING m.compiled -> 'params', f.rows;
            IF coalesce(m.document -> 'aggregation' ->> 'capture', 'immediate') = 'deferred' THEN
                INSERT INTO recvector.pending_interactions (user_id, entity_id, kind, weight, occurred_at)
                SELECT e.user_id, e.entity_id, e.kind, e.weight, e.occurred_at FROM unnest(evs) AS e;
            ELSE
                PERFORM recvector._ingest(evs, m, nowait => only_due);
            END IF;
            DELETE FROM recvector.failed_interactions WHERE id = f.id;
            done := done + 1;
        EXCEPTION WHEN OTHERS THEN
            UPDATE recvector.failed_interactions
            SET attempts = attempts + 1, error = SQLERRM, error_code = SQLSTATE,
                next_attempt_at = now() + recvector._backoff(attempts + 1)
            WHERE id = f.id;
        END;
    END LOOP;
    RETURN done;
END
$$;
COMMENT ON FUNCTION recvector._retry_failed(integer, boolean) IS
  'Internal: records again up to max_items batches of recvector.failed_interactions (only those due when only_due, then without waiting for locks); a batch that fails again gets attempts, error and a next attempt time with exponential backoff.';

CREATE OR REPLACE FUNCTION recvector.retry_failed(max_items integer DEFAULT 100)
RETURNS integer
LANGUAGE sql AS $$
    SELECT recvector._retry_failed(max_items, false)
$$;
COMMENT ON FUNCTION recvector.retry_failed(integer) IS
  'Records again the interactions kept in recvector.failed_interactions now, whatever their next attempt time (oldest first, up to max_items batches); a batch that fails again stays with attempts, error and a later next attempt. recvector.process_queue() does the same for the batches that are due. Returns the batches recorded.';
