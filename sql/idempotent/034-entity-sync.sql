-- Opt-in entity sync: statement-level triggers on the mapped entity table queue the ids of
-- inserted, updated and deleted rows; recvector.process_queue() re-embeds them (only when their
-- composed text changed) and drops the vectors of deleted ones.
CREATE OR REPLACE FUNCTION recvector._capture_entities()
RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    m recvector.mapping;
    id_column text;
    id_check jsonb;
BEGIN
    -- Runs as RecVector's role (so that an application role's UPDATE can queue the change): only
    -- as a statement trigger that enable_entity_sync() attached to the mapped entity table, and
    -- only while the id column still has the type the mapping was checked for.
    IF TG_WHEN <> 'AFTER' OR TG_LEVEL <> 'STATEMENT'
       OR NOT EXISTS (SELECT 1 FROM recvector.triggers AS t
                      WHERE t.source = 'entities:' || lower(TG_OP) AND t.table_oid = TG_RELID) THEN
        RAISE EXCEPTION 'recvector: % is not an entity-sync trigger that recvector.enable_entity_sync() attached (% % % on %)',
            TG_NAME, TG_WHEN, TG_LEVEL, TG_OP, TG_RELID::regclass
            USING ERRCODE = 'insufficient_privilege', HINT = 'Entity-sync triggers are added with SELECT recvector.enable_entity_sync();';
    END IF;
    BEGIN
        m := recvector._mapping();
        id_column := m.document -> 'entities' ->> 'id';
        SELECT jsonb_agg(c) INTO id_check FROM jsonb_array_elements(m.compiled -> 'entity_columns') AS c
        WHERE (c ->> 'rel_oid')::oid = TG_RELID AND c ->> 'column' = id_column;
        IF id_check IS NULL THEN
            RAISE EXCEPTION 'recvector: % is not the mapped entity table', TG_RELID::regclass
                USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'SELECT recvector.enable_entity_sync(); after loading a mapping.';
        END IF;
        PERFORM recvector._check_columns(id_check);
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
  'Internal: statement-level trigger body on the mapped entity table, attached by recvector.enable_entity_sync() (and refusing to run anywhere else); queues the ids of inserted, updated or deleted entities for re-embedding by the worker.';

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
                           'EXECUTE FUNCTION recvector._capture_entities()',
                           'recvector_entities_' || ev.name, ev.op, rel, ev.ref);
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
