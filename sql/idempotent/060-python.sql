-- PL/Python entry points: mapping validation (jsonschema + catalog + sqlglot) and embedding.
-- Each recvector._py_* body runs the same preamble: put this version's Python library directory on
-- sys.path (installed by `make install` with pip --target), check its version, cache the module in GD.
-- The public functions are thin PL/pgSQL wrappers that re-raise errors without PL/Python's
-- "plpy.Error: " prefix, keeping SQLSTATE, DETAIL and HINT.

CREATE OR REPLACE FUNCTION recvector._py_library_dir()
RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('recvector.python_lib_dir', true), ''),
                    '/usr/local/lib/recvector/@VERSION@')
$$;
COMMENT ON FUNCTION recvector._py_library_dir() IS
  'Internal: directory of the recvector Python library for this extension version (setting recvector.python_lib_dir overrides it).';

CREATE OR REPLACE FUNCTION recvector._rethrow(state text, message text, detail text, hint text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    msg text := regexp_replace(message, '^(plpy\.Error|spiexceptions\.[A-Za-z]+): ', '');
BEGIN
    IF nullif(detail, '') IS NOT NULL AND nullif(hint, '') IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg, DETAIL = detail, HINT = hint;
    ELSIF nullif(detail, '') IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg, DETAIL = detail;
    ELSIF nullif(hint, '') IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg, HINT = hint;
    ELSE
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg;
    END IF;
END
$$;
COMMENT ON FUNCTION recvector._rethrow(text, text, text, text) IS
  'Internal: re-raises an error from PL/Python with its SQLSTATE, DETAIL and HINT, without the "plpy.Error: " prefix.';

CREATE OR REPLACE FUNCTION recvector._py_set_schema(mapping jsonb)
RETURNS jsonb
LANGUAGE plpython3u AS $$
#PREAMBLE
return rv.set_schema(plpy, mapping)
$$;
COMMENT ON FUNCTION recvector._py_set_schema(jsonb) IS 'Internal: PL/Python body of recvector.set_schema().';

CREATE OR REPLACE FUNCTION recvector.set_schema(mapping jsonb)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hnt text;
BEGIN
    RETURN recvector._py_set_schema(mapping);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM recvector._rethrow(st, msg, det, hnt);
END
$$;
COMMENT ON FUNCTION recvector.set_schema(jsonb) IS
  'Loads the mapping of the application''s tables (rec_schema.json). Validates it against the shipped JSON Schema and the live catalog, reporting every problem with its JSON path; compiles identifier-quoted SQL checked with sqlglot; types the vector columns and builds the HNSW index. Writes nothing if anything is wrong. Returns a summary.';

CREATE OR REPLACE FUNCTION recvector._py_embed(texts text[])
RETURNS vector[]
LANGUAGE plpython3u AS $$
#PREAMBLE
return rv.embed(plpy, texts)
$$;
COMMENT ON FUNCTION recvector._py_embed(text[]) IS 'Internal: PL/Python body of recvector.embed().';

CREATE OR REPLACE FUNCTION recvector.embed(texts text[])
RETURNS vector[]
LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hnt text;
BEGIN
    RETURN recvector._py_embed(texts);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM recvector._rethrow(st, msg, det, hnt);
END
$$;
COMMENT ON FUNCTION recvector.embed(text[]) IS
  'Embeds texts with the mapping''s embedding provider (for ad-hoc queries); returns one vector per text.';

CREATE OR REPLACE FUNCTION recvector._py_bootstrap(batch_size integer, max_entities integer)
RETURNS jsonb
LANGUAGE plpython3u AS $$
#PREAMBLE
return rv.bootstrap(plpy, batch_size=batch_size, max_entities=max_entities, commit=False)
$$;
COMMENT ON FUNCTION recvector._py_bootstrap(integer, integer) IS 'Internal: PL/Python body of recvector.bootstrap().';

CREATE OR REPLACE FUNCTION recvector.bootstrap(batch_size integer DEFAULT NULL, max_entities integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hnt text;
BEGIN
    RETURN recvector._py_bootstrap(batch_size, max_entities);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM recvector._rethrow(st, msg, det, hnt);
END
$$;
COMMENT ON FUNCTION recvector.bootstrap(integer, integer) IS
  'Embeds every entity whose composed text or model changed (skips the rest), removes vectors of entities that are gone, recounts rec_entity_stats and builds every profile from history. Progress as NOTICEs. One transaction: an interrupted call leaves nothing; a rerun does only what is left. max_entities caps the embeddings done by this call. Returns a summary.';

CREATE OR REPLACE FUNCTION recvector._py_reembed(mapping jsonb)
RETURNS jsonb
LANGUAGE plpython3u AS $$
#PREAMBLE
return rv.reembed(plpy, mapping)
$$;
COMMENT ON FUNCTION recvector._py_reembed(jsonb) IS 'Internal: PL/Python body of recvector.reembed().';

CREATE OR REPLACE FUNCTION recvector.reembed(mapping jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hnt text;
BEGIN
    RETURN recvector._py_reembed(mapping);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM recvector._rethrow(st, msg, det, hnt);
END
$$;
COMMENT ON FUNCTION recvector.reembed(jsonb) IS
  'Loads the given mapping if any (a new model or vector size is allowed here), deletes every entity vector and profile vector, and embeds all entities again. Expensive: one embedding per entity; one transaction.';

CREATE OR REPLACE FUNCTION recvector._py_refresh_entities(entity_ids text[])
RETURNS jsonb
LANGUAGE plpython3u AS $$
#PREAMBLE
return rv.refresh_entities(plpy, entity_ids)
$$;
COMMENT ON FUNCTION recvector._py_refresh_entities(text[]) IS 'Internal: PL/Python body of recvector.refresh_entities().';

CREATE OR REPLACE FUNCTION recvector.refresh_entities(entity_ids text[])
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hnt text;
BEGIN
    RETURN recvector._py_refresh_entities(entity_ids);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM recvector._rethrow(st, msg, det, hnt);
END
$$;
COMMENT ON FUNCTION recvector.refresh_entities(text[]) IS
  'Embeds the given entities again if their composed text changed (an entity upsert in the app), and deletes the vectors of ids no longer in the entity table. Returns counts and the missing ids.';

CREATE OR REPLACE FUNCTION recvector._py_sync()
RETURNS jsonb
LANGUAGE plpython3u AS $$
#PREAMBLE
return rv.sync(plpy)
$$;
COMMENT ON FUNCTION recvector._py_sync() IS 'Internal: PL/Python body of recvector.sync().';

CREATE OR REPLACE FUNCTION recvector.sync()
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hnt text;
BEGIN
    RETURN recvector._py_sync();
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM recvector._rethrow(st, msg, det, hnt);
END
$$;
COMMENT ON FUNCTION recvector.sync() IS
  'Embeds only the entities whose composed text or model changed since they were embedded and deletes the vectors of entities that are gone; profiles are left to the queue. Returns counts (and provider calls for hosted providers).';

CREATE OR REPLACE FUNCTION recvector.validate_schema(mapping jsonb)
RETURNS TABLE (path text, problem text)
LANGUAGE plpython3u AS $$
#PREAMBLE
return rv.validate_schema(plpy, mapping)
$$;
COMMENT ON FUNCTION recvector.validate_schema(jsonb) IS
  'Checks a mapping document without loading it: one row per problem (JSON path, message); no rows when it is valid.';

CREATE OR REPLACE PROCEDURE recvector.bootstrap_resumable(batch_size integer DEFAULT NULL)
LANGUAGE plpython3u AS $$
#PREAMBLE
rv.bootstrap(plpy, batch_size=batch_size, max_entities=None, commit=True)
$$;
COMMENT ON PROCEDURE recvector.bootstrap_resumable(integer) IS
  'Like recvector.bootstrap() but commits after every batch (CALL it outside a transaction block): interrupt it at any point and CALL it again to resume where it stopped.';
