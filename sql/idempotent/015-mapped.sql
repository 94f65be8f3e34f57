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
    RETURN true;
END
$gen$;
COMMENT ON FUNCTION recvector._generate_mapped() IS
  'Internal: writes recvector._mapped_seen() and recvector._mapped_history() with the loaded mapping''s compiled SQL as static queries (plans cached per session). Run by set_schema, repair and every install or update.';
