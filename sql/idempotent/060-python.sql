-- PL/Python entry points: mapping validation (jsonschema + catalog + sqlglot) and embedding.
-- Each body runs the same preamble: put this version's Python library directory on sys.path
-- (installed by `make install` with pip --target), check its version, cache the module in GD.

CREATE OR REPLACE FUNCTION recvector._py_library_dir()
RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('recvector.python_lib_dir', true), ''),
                    '/usr/local/lib/recvector/@VERSION@')
$$;
COMMENT ON FUNCTION recvector._py_library_dir() IS
  'Internal: directory of the recvector Python library for this extension version (setting recvector.python_lib_dir overrides it).';

CREATE OR REPLACE FUNCTION recvector.set_schema(mapping jsonb)
RETURNS jsonb
LANGUAGE plpython3u AS $$
#PREAMBLE
return rv.set_schema(plpy, mapping)
$$;
COMMENT ON FUNCTION recvector.set_schema(jsonb) IS
  'Loads the mapping of the application''s tables (rec_schema.json). Validates it against the shipped JSON Schema and the live catalog, reporting every problem with its JSON path; compiles identifier-quoted SQL checked with sqlglot; types the vector columns and builds the HNSW index. Writes nothing if anything is wrong. Returns a summary.';

CREATE OR REPLACE FUNCTION recvector.validate_schema(mapping jsonb)
RETURNS TABLE (path text, problem text)
LANGUAGE plpython3u AS $$
#PREAMBLE
return rv.validate_schema(plpy, mapping)
$$;
COMMENT ON FUNCTION recvector.validate_schema(jsonb) IS
  'Checks a mapping document without loading it: one row per problem (JSON path, message); no rows when it is valid.';

CREATE OR REPLACE FUNCTION recvector.embed(texts text[])
RETURNS vector[]
LANGUAGE plpython3u AS $$
#PREAMBLE
return rv.embed(plpy, texts)
$$;
COMMENT ON FUNCTION recvector.embed(text[]) IS
  'Embeds texts with the mapping''s embedding provider (for ad-hoc queries); returns one vector per text.';

CREATE OR REPLACE FUNCTION recvector.bootstrap(batch_size integer DEFAULT NULL, max_entities integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpython3u AS $$
#PREAMBLE
return rv.bootstrap(plpy, batch_size=batch_size, max_entities=max_entities, commit=False)
$$;
COMMENT ON FUNCTION recvector.bootstrap(integer, integer) IS
  'Embeds every entity whose composed text or model changed (skips the rest), removes vectors of entities that are gone, recounts rec_entity_stats and builds every profile from history. Progress as NOTICEs. One transaction: an interrupted call leaves nothing; a rerun does only what is left. max_entities caps the embeddings done by this call. Returns a summary.';

CREATE OR REPLACE PROCEDURE recvector.bootstrap_resumable(batch_size integer DEFAULT NULL)
LANGUAGE plpython3u AS $$
#PREAMBLE
rv.bootstrap(plpy, batch_size=batch_size, max_entities=None, commit=True)
$$;
COMMENT ON PROCEDURE recvector.bootstrap_resumable(integer) IS
  'Like recvector.bootstrap() but commits after every batch (CALL it outside a transaction block): interrupt it at any point and CALL it again to resume where it stopped.';

CREATE OR REPLACE FUNCTION recvector.reembed(mapping jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpython3u AS $$
#PREAMBLE
return rv.reembed(plpy, mapping)
$$;
COMMENT ON FUNCTION recvector.reembed(jsonb) IS
  'Loads the given mapping if any (a new model or vector size is allowed here), deletes every entity vector and profile vector, and embeds all entities again. Expensive: one embedding per entity; one transaction.';

CREATE OR REPLACE FUNCTION recvector.refresh_entities(entity_ids text[])
RETURNS jsonb
LANGUAGE plpython3u AS $$
#PREAMBLE
return rv.refresh_entities(plpy, entity_ids)
$$;
COMMENT ON FUNCTION recvector.refresh_entities(text[]) IS
  'Embeds the given entities again if their composed text changed (an entity upsert in the app), and deletes the vectors of ids no longer in the entity table. Returns counts and the missing ids.';
