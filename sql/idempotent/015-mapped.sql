-- The per-mapping queries (a user's history, the entities a user has seen) as functions with static
-- SQL, so PostgreSQL plans them once per session instead of on every call. recvector.set_schema()
-- and recvector.repair() (and every install or update of the extension) generate them from the
-- loaded mapping with recvector._generate_mapped(). The versions below are the fallback used before
-- that (and after a pg_restore until repair()): the same SQL, run dynamically.
--
-- Parameters are those of the compiled SQL: $1 the mapping's params (jsonb), $2 the user id (text),
-- $3 a row limit, $4 the user id when valid for the user id type (recvector._id_or_null), $5 an
-- optional cutoff time.

CREATE OR REPLACE FUNCTION recvector._mapped_seen(jsonb, text, integer, text)
RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    seen text[];
BEGIN
    EXECUTE 'SELECT coalesce(array_agg(s.entity_id), ''{}'') FROM (' || ((recvector._mapping()).compiled ->> 'seen') || ') AS s'
    INTO seen USING $1, $2, $3, $4;
    RETURN seen;
END
$$;
COMMENT ON FUNCTION recvector._mapped_seen(jsonb, text, integer, text) IS
  'Internal: ids of the entities a user interacted with, from the mapped tables and recvector.events (generated from the mapping by recvector._generate_mapped()).';

CREATE OR REPLACE FUNCTION recvector._mapped_history(jsonb, text, integer, text, timestamptz)
RETURNS TABLE (user_id text, entity_id text, kind text, weight double precision, occurred_at timestamptz)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY EXECUTE (recvector._mapping()).compiled ->> 'history' USING $1, $2, $3, $4, $5;
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
    vector_schema name;
    opts text;
    branches text;
    deferred boolean := false;
    params jsonb;
BEGIN
    SELECT n.nspname INTO vector_schema
    FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector';
    opts := format('LANGUAGE plpgsql VOLATILE SET search_path = recvector, %I, pg_catalog, pg_temp', vector_schema);
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
    SELECT string_agg(format(E'        %s TG_ARGV[0] = %L THEN\n'
                             || CASE WHEN deferred
                                THEN E'            INSERT INTO recvector.pending_interactions (user_id, entity_id, kind, weight, occurred_at)\n'
                                     || E'            SELECT t.user_id, t.entity_id, t.kind, t.weight, t.occurred_at FROM (%s) AS t;\n'
                                ELSE E'            SELECT array_agg(ROW(t.user_id, t.entity_id, t.kind, t.weight, t.occurred_at)::recvector.interaction)\n'
                                     || E'            INTO evs FROM (%s) AS t;\n'
                                     || E'            PERFORM recvector._ingest(evs, recvector._mapping());\n' END,
                             CASE WHEN x.n = 1 THEN 'IF' ELSE 'ELSIF' END, x.key,
                             recvector._replace_param(x.value ->> 'trigger', '$1', '_rv_params')), '' ORDER BY x.n)
    INTO branches
    FROM (SELECT s.key, s.value, row_number() OVER (ORDER BY s.key) AS n FROM jsonb_each(sources) AS s) AS x;
    EXECUTE format('CREATE OR REPLACE FUNCTION recvector._capture_interactions() RETURNS trigger %s SECURITY DEFINER AS %L',
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
    BEGIN
$body$ || coalesce(branches || E'        ELSE\n', E'        IF true THEN\n') || $body$            m := recvector._mapping();
            q := m.compiled -> 'sources' -> TG_ARGV[0] ->> 'trigger';
            IF q IS NULL THEN
                RAISE EXCEPTION 'trigger % on % names source "%", which the loaded mapping does not have',
                    TG_NAME, TG_TABLE_NAME, TG_ARGV[0] USING ERRCODE = 'undefined_object';
            END IF;
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
        INSERT INTO recvector.failed_interactions (source, rows, error, error_code)
        SELECT TG_ARGV[0], jsonb_agg(to_jsonb(r)), msg, st FROM new_rows AS r;
        RAISE WARNING 'recvector: could not record the rows inserted into % (%); they are kept in recvector.failed_interactions', TG_TABLE_NAME, msg
            USING HINT = 'Fix the cause, then SELECT recvector.retry_failed(); SET recvector.strict = on makes such inserts fail instead.';
    END;
    RETURN NULL;
END$body$);
END
$gen$;
COMMENT ON FUNCTION recvector._write_capture(jsonb) IS
  'Internal: writes the auto-logging trigger function recvector._capture_interactions() with one static branch per interaction source (sources: the compiled mapping''s; NULL: every source takes the dynamic path), recording the rows at once or, with aggregation.capture = deferred, appending them to recvector.pending_interactions.';

-- The trigger function as installed: the dynamic path for every source until a mapping is loaded.
SELECT recvector._write_capture(NULL);
COMMENT ON FUNCTION recvector._capture_interactions() IS
  'Internal: statement-level AFTER INSERT trigger body; maps the inserted rows (transition table) and records them in one pass. On failure the rows go to recvector.failed_interactions and the app''s INSERT succeeds (unless recvector.strict = on). Generated from the mapping by recvector._write_capture().';

CREATE OR REPLACE FUNCTION recvector._generate_mapped()
RETURNS boolean
LANGUAGE plpgsql AS $gen$
DECLARE
    c jsonb;
    vector_schema name;
    opts text;
BEGIN
    SELECT m.compiled INTO c FROM recvector.mapping AS m WHERE m.id = 1;
    IF c IS NULL THEN
        RETURN false;
    END IF;
    SELECT n.nspname INTO vector_schema
    FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector';
    opts := format('LANGUAGE plpgsql STABLE SET search_path = recvector, %I, pg_catalog, pg_temp', vector_schema);
    EXECUTE format('CREATE OR REPLACE FUNCTION recvector._mapped_seen(jsonb, text, integer, text) RETURNS text[] %s AS %L',
                   opts, E'BEGIN\n    RETURN ARRAY(SELECT s.entity_id FROM (' || (c ->> 'seen') || E') AS s);\nEND');
    EXECUTE format('CREATE OR REPLACE FUNCTION recvector._mapped_history(jsonb, text, integer, text, timestamptz) '
                   'RETURNS TABLE (user_id text, entity_id text, kind text, weight double precision, occurred_at timestamptz) %s AS %L',
                   opts, E'#variable_conflict use_column\nBEGIN\n    RETURN QUERY ' || (c ->> 'history') || E';\nEND');

    PERFORM recvector._write_capture(c -> 'sources');
    RETURN true;
END
$gen$;
COMMENT ON FUNCTION recvector._generate_mapped() IS
  'Internal: writes recvector._mapped_seen(), recvector._mapped_history() and the auto-logging trigger recvector._capture_interactions() with the loaded mapping''s compiled SQL as static queries (plans cached per session). Run by set_schema, repair and every install or update.';
