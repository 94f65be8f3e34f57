-- Hash partitioning of the two aggregate tables, for very many users and entities (docs/scaling.md).
-- The setting recvector.partitions, read when the extension is created or updated, chooses the
-- shape: unset keeps the current one, 1 a plain table, 2-1024 that many hash partitions on the key.
-- A change moves the rows inside this script (so the new tables are extension members, registered
-- for pg_dump); recvector.update_user_profile(), whose result type is the profile row, is dropped
-- here and created again by a later file.
DO $partitions$
DECLARE
    setting text := nullif(current_setting('recvector.partitions', true), '');
    want integer;
    t record;
    have integer;
    tbl text;
    i integer;
    part text;
BEGIN
    IF setting IS NULL THEN
        RETURN;
    END IF;
    IF setting !~ '^\s*\d{1,4}\s*$' OR setting::integer NOT BETWEEN 1 AND 1024 THEN
        RAISE EXCEPTION 'recvector.partitions must be an integer from 1 to 1024, got %', setting
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Unset it to keep the current layout, 1 for plain tables, 2-1024 for hash partitions.';
    END IF;
    want := setting::integer;
    FOR t IN SELECT * FROM (VALUES ('rec_user_profiles', 'user_id'), ('rec_entity_stats', 'entity_id')) AS v(name, key) LOOP
        SELECT CASE c.relkind WHEN 'p' THEN (SELECT count(*) FROM pg_catalog.pg_inherits WHERE inhparent = c.oid) ELSE 1 END
          INTO have
        FROM pg_catalog.pg_class c WHERE c.oid = format('recvector.%I', t.name)::regclass;
        CONTINUE WHEN have = want;
        RAISE NOTICE 'recvector: rebuilding recvector.% with % partition(s) (had %)', t.name, want, have;
        tbl := format('recvector.%I', t.name);
        EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', tbl);
        DROP FUNCTION IF EXISTS recvector.update_user_profile(text);
        EXECUTE format('ALTER TABLE %s RENAME TO %I', tbl, t.name || '_old');
        EXECUTE format('ALTER INDEX recvector.%I RENAME TO %I', t.name || '_pkey', t.name || '_old_pkey');
        IF t.name = 'rec_entity_stats' THEN
            ALTER INDEX recvector.rec_entity_stats_popularity_idx RENAME TO rec_entity_stats_old_popularity_idx;
        END IF;
        EXECUTE format('CREATE TABLE %s (LIKE recvector.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS)%s',
                       tbl, t.name || '_old', CASE WHEN want > 1 THEN format(' PARTITION BY HASH (%I)', t.key) ELSE '' END);
        EXECUTE format('ALTER TABLE %s ADD PRIMARY KEY (%I)', tbl, t.key);
        IF t.name = 'rec_entity_stats' THEN
            CREATE INDEX rec_entity_stats_popularity_idx ON recvector.rec_entity_stats (popularity DESC, entity_id);
        END IF;
        EXECUTE format('COMMENT ON TABLE %s IS %L', tbl,
                       obj_description(format('recvector.%I', t.name || '_old')::regclass, 'pg_class'));
        IF want > 1 THEN
            FOR i IN 0 .. want - 1 LOOP
                part := format('recvector.%I', format('%s_p%s', t.name, lpad(i::text, 4, '0')));
                EXECUTE format('CREATE TABLE %s PARTITION OF %s FOR VALUES WITH (MODULUS %s, REMAINDER %s)', part, tbl, want, i);
                PERFORM pg_catalog.pg_extension_config_dump(part, '');
            END LOOP;
        ELSE
            PERFORM pg_catalog.pg_extension_config_dump(tbl, '');
        END IF;
        EXECUTE format('INSERT INTO %s SELECT * FROM recvector.%I', tbl, t.name || '_old');
        -- Out of the extension first (its partitions too): that also takes them out of the tables
        -- pg_dump copies.
        FOR part IN SELECT inhrelid::regclass::text FROM pg_catalog.pg_inherits
                    WHERE inhparent = format('recvector.%I', t.name || '_old')::regclass LOOP
            EXECUTE format('ALTER EXTENSION recvector DROP TABLE %s', part);
        END LOOP;
        EXECUTE format('ALTER EXTENSION recvector DROP TABLE recvector.%I', t.name || '_old');
        EXECUTE format('DROP TABLE recvector.%I', t.name || '_old');
    END LOOP;
END
$partitions$;
