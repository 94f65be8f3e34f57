-- The per-mapping queries (a user's history, the entities a user has seen) as functions with static
-- SQL, so PostgreSQL plans them once per session instead of on every call. recvector.set_schema()
-- and recvector.repair() (and every install or update of the extension) generate them from the
-- loaded mapping with recvector._generate_mapped(). The versions below are the fallback used before
-- that (and after a pg_restore until repair()): the same SQL, run dynamically.
--
-- Parameters are those of the compiled SQL: $1 the mapping's params (jsonb), $2 the user id (text),
-- $3 a row limit, $4 the user id when valid for the user id type (recvector._id_or_null), $5 an
-- optional cutoff time.
--
-- Every function that runs compiled SQL over the application's tables first checks that the
-- columns it reads still have the types the mapping was compiled for (recvector._check_columns):
-- a table's owner could otherwise change a column to a type of their own, whose casts would then
-- run inside RecVector's functions.

CREATE OR REPLACE FUNCTION recvector._check_columns(cols jsonb)
RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    bad record;
BEGIN
    -- Fast path: the relation and type oids recorded by set_schema (or repair) still match.
    IF (SELECT count(*) FROM pg_catalog.jsonb_to_recordset(cols) AS c(rel_oid oid, "column" text, type_oid oid)
        JOIN pg_catalog.pg_attribute AS a
          ON a.attrelid = c.rel_oid AND a.attname = c."column" AND a.atttypid = c.type_oid AND NOT a.attisdropped)
       = pg_catalog.jsonb_array_length(cols) THEN
        RETURN;
    END IF;
    -- After pg_restore (new oids until recvector.repair()): the same relations and types by name.
    SELECT c.rel, c."column", c.type INTO bad
    FROM pg_catalog.jsonb_to_recordset(cols) AS c(rel text, "column" text, type text, type_ident text)
    WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute AS a
                      WHERE a.attrelid = pg_catalog.to_regclass(c.rel) AND a.attname = c."column"
                        AND a.atttypid = pg_catalog.to_regtype(c.type_ident) AND NOT a.attisdropped)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'recvector: the mapped column %.% is no longer of type % (or its table was replaced)',
            bad.rel, quote_ident(bad."column"), bad.type
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'RecVector reads the application''s tables only with the column types the mapping was checked for.',
                  HINT = 'Load the mapping again: SELECT recvector.set_schema(...);';
    END IF;
END
$$;
COMMENT ON FUNCTION recvector._check_columns(jsonb) IS
  'Internal: raises unless every listed column of the application''s tables (relation, name and type, as compiled by set_schema) still exists with that type; by oid, or after pg_restore by name.';

-- After pg_restore the relations and extension types have new oids: record them again (repair()).
CREATE OR REPLACE FUNCTION recvector._refresh_columns(cols jsonb)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(pg_catalog.jsonb_agg(c.elem || pg_catalog.jsonb_build_object(
               'rel_oid', coalesce(a.attrelid, (c.elem ->> 'rel_oid')::oid),
               'type_oid', coalesce(a.atttypid, (c.elem ->> 'type_oid')::oid)) ORDER BY c.ord), '[]'::jsonb)
    FROM pg_catalog.jsonb_array_elements(cols) WITH ORDINALITY AS c(elem, ord)
    LEFT JOIN pg_catalog.pg_attribute AS a
      ON a.attrelid = pg_catalog.to_regclass(c.elem ->> 'rel') AND a.attname = c.elem ->> 'column' AND NOT a.attisdropped
     AND a.atttypid = pg_catalog.to_regtype(c.elem ->> 'type_ident')
$$;
COMMENT ON FUNCTION recvector._refresh_columns(jsonb) IS
  'Internal: the compiled column list with relation and type oids found again by name (after pg_restore); a column whose type changed keeps its old oids, so that recvector._check_columns refuses it.';

CREATE OR REPLACE FUNCTION recvector._mapped_seen(jsonb, text, integer, text)
RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    seen text[];
    m recvector.mapping := recvector._mapping();
BEGIN
    PERFORM recvector._check_columns(m.compiled -> 'columns');
    EXECUTE 'SELECT coalesce(array_agg(s.entity_id), ''{}'') FROM (' || (m.compiled ->> 'seen') || ') AS s'
    INTO seen USING $1, $2, $3, $4;
    RETURN seen;
END
$$;
COMMENT ON FUNCTION recvector._mapped_seen(jsonb, text, integer, text) IS
  'Internal: ids of the entities a user interacted with, from the mapped tables and recvector.events (generated from the mapping by recvector._generate_mapped()).';

CREATE OR REPLACE FUNCTION recvector._mapped_history(jsonb, text, integer, text, timestamptz)
RETURNS TABLE (user_id text, entity_id text, kind text, weight double precision, occurred_at timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    m recvector.mapping := recvector._mapping();
BEGIN
    PERFORM recvector._check_columns(m.compiled -> 'columns');
    RETURN QUERY EXECUTE m.compiled ->> 'history' USING $1, $2, $3, $4, $5;
END
$$;
COMMENT ON FUNCTION recvector._mapped_history(jsonb, text, integer, text, timestamptz) IS
  'Internal: a user''s last $3 interactions (before $5 when given), newest first, from the mapped tables and recvector.events (generated from the mapping by recvector._generate_mapped()).';

-- $1 of a compiled query replaced outside quoted identifiers and string literals (not $10): the
-- mapping's params become a variable of the generated trigger function.
CREATE OR REPLACE FUNCTION recvector._replace_param(q text, param text, replacement text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    result text := '';
    i integer := 1;
    n integer := length(q);
    pl integer := length(param);
    ch text;
    quote text := '';
BEGIN
    WHILE i <= n LOOP
        ch := substr(q, i, 1);
        IF quote <> '' THEN
            result := result || ch;
            IF ch = quote THEN
                IF substr(q, i + 1, 1) = quote THEN
                    result := result || quote;
                    i := i + 1;
                ELSE
                    quote := '';
                END IF;
            END IF;
        ELSIF ch IN ('''', '"') THEN
            quote := ch;
            result := result || ch;
        ELSIF substr(q, i, pl) = param AND substr(q, i + pl, 1) !~ '[0-9]' THEN
            result := result || replacement;
            i := i + pl;
            CONTINUE;
        ELSE
            result := result || ch;
        END IF;
        i := i + 1;
    END LOOP;
    RETURN result;
END
$$;
COMMENT ON FUNCTION recvector._replace_param(text, text, text) IS
  'Internal: replaces a positional parameter ($1) in SQL text outside quoted identifiers and string literals.';

CREATE OR REPLACE FUNCTION recvector._write_capture(sources jsonb)
RETURNS void
LANGUAGE plpgsql AS $gen$
DECLARE
    opts text := 'LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, recvector, pg_temp';
    branches text;
    failed text;
    deferred boolean := false;
    params jsonb;
BEGIN
    IF sources IS NOT NULL THEN
        SELECT coalesce(m.document -> 'aggregation' ->> 'capture', 'immediate') = 'deferred', m.compiled -> 'params'
        INTO deferred, params FROM recvector.mapping AS m WHERE m.id = 1;
    END IF;

    -- The auto-logging trigger: one static branch per interaction source (PL/pgSQL compiles a
    -- trigger function once per table, so each table only ever plans its own branch); a source
    -- the loaded mapping does not have takes the dynamic path, which raises a clear error.
    -- immediate: the rows are recorded by recvector._ingest() in the same statement;
    -- deferred:  they are appended to recvector.pending_interactions (one narrow row each, no
    --            index, no mapping read) and folded later by recvector.fold_pending().
    -- Before reading a row, each branch checks that it fires on the table it was compiled for, and
    -- that the columns it casts still have their checked types.
    SELECT string_agg(format(E'        %s TG_ARGV[0] = %L THEN\n'
                             || E'            IF TG_RELID <> %s::oid THEN\n'
                             || E'                RAISE EXCEPTION ''recvector: the auto-logging trigger of source %% fired on %%, not on its mapped table'', TG_ARGV[0], TG_RELID::regclass USING ERRCODE = ''insufficient_privilege'';\n'
                             || E'            END IF;\n'
                             || E'            PERFORM recvector._check_columns(%L::jsonb);\n',
                             CASE WHEN x.n = 1 THEN 'IF' ELSE 'ELSIF' END, x.key,
                             coalesce((x.value ->> 'table_oid')::bigint, 0), (x.value -> 'columns')::text), '' ORDER BY x.n),
           string_agg(format(E'            %s TG_ARGV[0] = %L THEN\n'
                             || E'                INSERT INTO recvector.failed_interactions (source, rows, error, error_code)\n'
                             || E'                SELECT TG_ARGV[0], coalesce(jsonb_agg(%s), ''[]''), msg, st FROM new_rows AS r;\n',
                             CASE WHEN x.n = 1 THEN 'IF' ELSE 'ELSIF' END, x.key, x.value ->> 'failed_row'), '' ORDER BY x.n)
    INTO branches, failed
    FROM (SELECT s.key, s.value, row_number() OVER (ORDER BY s.key) AS n FROM jsonb_each(sources) AS s) AS x;
    branches := coalesce(branches || E'        END IF;\n', '');
    failed := coalesce(failed || E'            ELSE\n', E'            IF true THEN\n');

    SELECT branches || E'    BEGIN\n' || coalesce(string_agg(format(E'        %s TG_ARGV[0] = %L THEN\n'
                             || CASE WHEN deferred
                                THEN E'            INSERT INTO recvector.pending_interactions (user_id, entity_id, kind, weight, occurred_at)\n'
                                     || E'            SELECT t.user_id, t.entity_id, t.kind, t.weight, t.occurred_at FROM (%s) AS t;\n'
                                ELSE E'            SELECT array_agg(ROW(t.user_id, t.entity_id, t.kind, t.weight, t.occurred_at)::recvector.interaction)\n'
                                     || E'            INTO evs FROM (%s) AS t;\n'
                                     || E'            PERFORM recvector._ingest(evs, recvector._mapping());\n' END,
                             CASE WHEN x.n = 1 THEN 'IF' ELSE 'ELSIF' END, x.key,
                             recvector._replace_param(x.value ->> 'trigger', '$1', '_rv_params')), '' ORDER BY x.n)
                         || E'        ELSE\n', E'        IF true THEN\n')
    INTO branches
    FROM (SELECT s.key, s.value, row_number() OVER (ORDER BY s.key) AS n FROM jsonb_each(sources) AS s) AS x;

    EXECUTE format('CREATE OR REPLACE FUNCTION recvector._capture_interactions() RETURNS trigger %s AS %L',
                   opts, $body$#variable_conflict use_variable
DECLARE
    m recvector.mapping;
    _rv_params jsonb := $body$ || quote_nullable(params::text) || $body$;
    evs recvector.interaction[];
    q text;
    st text;
    msg text;
BEGIN
    -- Generated by recvector._write_capture() from the loaded mapping.
    -- Only as the AFTER INSERT ... FOR EACH STATEMENT trigger that enable_auto_logging() attached
    -- to a mapped table (it runs as RecVector's role: never on a table of anyone's choosing).
    IF TG_WHEN <> 'AFTER' OR TG_LEVEL <> 'STATEMENT' OR TG_OP <> 'INSERT'
       OR NOT EXISTS (SELECT 1 FROM recvector.triggers AS t WHERE t.source = TG_ARGV[0] AND t.table_oid = TG_RELID) THEN
        RAISE EXCEPTION 'recvector: % is not an auto-logging trigger that recvector.enable_auto_logging() attached (% % % on %)',
            TG_NAME, TG_WHEN, TG_LEVEL, TG_OP, TG_RELID::regclass
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Auto-logging triggers are added with SELECT recvector.enable_auto_logging();';
    END IF;
$body$ || branches || $body$            m := recvector._mapping();
            q := m.compiled -> 'sources' -> TG_ARGV[0] ->> 'trigger';
            IF q IS NULL THEN
                RAISE EXCEPTION 'trigger % on % names source "%", which the loaded mapping does not have',
                    TG_NAME, TG_TABLE_NAME, TG_ARGV[0] USING ERRCODE = 'undefined_object';
            END IF;
            PERFORM recvector._check_columns(m.compiled -> 'sources' -> TG_ARGV[0] -> 'columns');
            EXECUTE 'SELECT array_agg(ROW(user_id, entity_id, kind, weight, occurred_at)::recvector.interaction) FROM ('
                    || q || ') AS t' INTO evs USING m.compiled -> 'params';
            IF coalesce(m.document -> 'aggregation' ->> 'capture', 'immediate') = 'deferred' THEN
                INSERT INTO recvector.pending_interactions (user_id, entity_id, kind, weight, occurred_at)
                SELECT e.user_id, e.entity_id, e.kind, e.weight, e.occurred_at FROM unnest(evs) AS e;
            ELSE
                PERFORM recvector._ingest(evs, m);
            END IF;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        IF coalesce(nullif(current_setting('recvector.strict', true), ''), 'off')::boolean THEN
            RAISE;
        END IF;
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        -- Only the mapped columns are kept (their types are checked; a whole row could hold a
        -- column of any type, whose conversion to jsonb could run code of its owner's).
$body$ || failed || $body$                INSERT INTO recvector.failed_interactions (source, rows, error, error_code)
                VALUES (TG_ARGV[0], '[]', msg, st);
            END IF;
        RAISE WARNING 'recvector: could not record the rows inserted into % (%); they are kept in recvector.failed_interactions', TG_TABLE_NAME, msg
            USING HINT = 'Fix the cause; recvector.process_queue() records them again (or SELECT recvector.retry_failed()); SET recvector.strict = on makes such inserts fail instead.';
    END;
    RETURN NULL;
END$body$);
END
$gen$;
COMMENT ON FUNCTION recvector._write_capture(jsonb) IS
  'Internal: writes the auto-logging trigger function recvector._capture_interactions() with one static branch per interaction source (sources: the compiled mapping''s; NULL: every source takes the dynamic path), recording the rows at once or, with aggregation.capture = deferred, appending them to recvector.pending_interactions. The function checks where it fires (the registered mapped table, AFTER INSERT FOR EACH STATEMENT) and the types of the columns it casts before reading a row.';

-- The trigger function as installed: the dynamic path for every source until a mapping is loaded.
SELECT recvector._write_capture(NULL);
COMMENT ON FUNCTION recvector._capture_interactions() IS
  'Internal: statement-level AFTER INSERT trigger body attached by recvector.enable_auto_logging(); refuses to run anywhere else; maps the inserted rows (transition table) and records them in one pass. On failure the mapped columns of the rows go to recvector.failed_interactions and the app''s INSERT succeeds (unless recvector.strict = on). Generated from the mapping by recvector._write_capture().';

CREATE OR REPLACE FUNCTION recvector._generate_mapped()
RETURNS boolean
LANGUAGE plpgsql AS $gen$
DECLARE
    c jsonb;
    opts text := 'LANGUAGE plpgsql STABLE SET search_path = pg_catalog, recvector, pg_temp';
    check_sql text;
BEGIN
    SELECT m.compiled INTO c FROM recvector.mapping AS m WHERE m.id = 1;
    IF c IS NULL THEN
        RETURN false;
    END IF;
    check_sql := format(E'    PERFORM recvector._check_columns(%L::jsonb);\n', c -> 'columns');
    EXECUTE format('CREATE OR REPLACE FUNCTION recvector._mapped_seen(jsonb, text, integer, text) RETURNS text[] %s AS %L',
                   opts, E'BEGIN\n' || check_sql || E'    RETURN ARRAY(SELECT s.entity_id FROM (' || (c ->> 'seen') || E') AS s);\nEND');
    EXECUTE format('CREATE OR REPLACE FUNCTION recvector._mapped_history(jsonb, text, integer, text, timestamptz) '
                   'RETURNS TABLE (user_id text, entity_id text, kind text, weight double precision, occurred_at timestamptz) %s AS %L',
                   opts, E'#variable_conflict use_column\nBEGIN\n' || check_sql || E'    RETURN QUERY ' || (c ->> 'history') || E';\nEND');

    PERFORM recvector._write_capture(c -> 'sources');
    RETURN true;
END
$gen$;
COMMENT ON FUNCTION recvector._generate_mapped() IS
  'Internal: writes recvector._mapped_seen(), recvector._mapped_history() and the auto-logging trigger recvector._capture_interactions() with the loaded mapping''s compiled SQL as static queries (plans cached per session). Run by set_schema, repair and every install or update.';
