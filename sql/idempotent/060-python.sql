-- PL/Python entry points: mapping validation (jsonschema + catalog + sqlglot) and embedding.
-- Each recvector._py_* body runs the same preamble: put this version's Python library directory on
-- sys.path (installed by `make install` with pip --target), check its version, cache the module in GD.
-- The public functions are thin PL/pgSQL wrappers that re-raise errors without PL/Python's
-- "plpy.Error: " prefix, keeping SQLSTATE, DETAIL and HINT. scripts/build_sql.py expands each
--   --@python recvector.<name>(<args>) RETURNS <type>
--   --@call <python expression>
-- into the PL/Python function recvector._py_<name> and its recvector.<name> wrapper.

CREATE OR REPLACE FUNCTION recvector._py_library_dir()
RETURNS text
LANGUAGE sql STABLE AS $$
    -- The setting recvector.python_lib_dir (for RecVector's own tests) is honoured only in a
    -- superuser's session: anyone else could point it at a directory of their own.
    SELECT coalesce(CASE WHEN (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname = session_user)
                         THEN nullif(pg_catalog.current_setting('recvector.python_lib_dir', true), '') END,
                    '/usr/local/lib/recvector/@VERSION@')
$$;
COMMENT ON FUNCTION recvector._py_library_dir() IS
  'Internal: directory of the recvector Python library for this extension version (/usr/local/lib/recvector/<version>; the setting recvector.python_lib_dir overrides it in a superuser''s session only).';

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

--@python recvector.set_schema(mapping jsonb) RETURNS jsonb
--@call rv.set_schema(plpy, mapping)
COMMENT ON FUNCTION recvector.set_schema(jsonb) IS
  'Loads the mapping of the application''s tables (rec_schema.json). Validates it against the shipped JSON Schema and the live catalog, reporting every problem with its JSON path; compiles identifier-quoted SQL checked with sqlglot; types the vector columns and builds the HNSW index. Writes nothing if anything is wrong. Returns a summary.';

--@python recvector._recompile() RETURNS jsonb
--@call rv.recompile(plpy)
COMMENT ON FUNCTION recvector._recompile() IS
  'Internal: compiles the loaded mapping again with this version of RecVector (run by every install and update), keeping the document and when it was loaded; an update whose mapping no longer passes the checks fails with the problems listed.';

--@python recvector._ease_model(lam double precision, k integer, started timestamptz, src text DEFAULT 'recvector.neighbor_source', target text DEFAULT 'recvector.item_neighbors') RETURNS jsonb
--@call rv.ease_model(plpy, lam, k, started, src, target)
COMMENT ON FUNCTION recvector._ease_model(double precision, integer, timestamptz, text, text) IS
  'Internal: builds the EASE item-to-item model from a neighbour source (numpy) and writes the k largest weights of each row into a neighbour relation, stamped started (a step of recvector.rebuild_neighbors, or the evaluation''s).';

--@python recvector.embed(texts text[]) RETURNS vector[]
--@call rv.embed(plpy, texts)
COMMENT ON FUNCTION recvector.embed(text[]) IS
  'Embeds texts with the mapping''s embedding provider (for ad-hoc queries); returns one vector per text.';

--@python recvector.bootstrap(batch_size integer DEFAULT NULL, max_entities integer DEFAULT NULL) RETURNS jsonb
--@call rv.bootstrap(plpy, batch_size=batch_size, max_entities=max_entities, commit=False)
COMMENT ON FUNCTION recvector.bootstrap(integer, integer) IS
  'Embeds every entity whose composed text or model changed (skips the rest), removes vectors of entities that are gone, recounts rec_entity_stats and builds every profile from history. Progress as NOTICEs. One transaction: an interrupted call leaves nothing; a rerun does only what is left. max_entities caps the embeddings done by this call. Returns a summary.';

--@python recvector.reembed(mapping jsonb DEFAULT NULL) RETURNS jsonb
--@call rv.reembed(plpy, mapping)
COMMENT ON FUNCTION recvector.reembed(jsonb) IS
  'Loads the given mapping if any (a new model or vector size is allowed here), deletes every entity vector and profile vector, and embeds all entities again. Expensive: one embedding per entity; one transaction.';

--@python recvector.refresh_entities(entity_ids text[]) RETURNS jsonb
--@call rv.refresh_entities(plpy, entity_ids)
COMMENT ON FUNCTION recvector.refresh_entities(text[]) IS
  'Embeds the given entities again if their composed text changed (an entity upsert in the app), and deletes the vectors of ids no longer in the entity table. Returns counts and the missing ids.';

--@python recvector.sync() RETURNS jsonb
--@call rv.sync(plpy)
COMMENT ON FUNCTION recvector.sync() IS
  'Embeds only the entities whose composed text or model changed since they were embedded and deletes the vectors of entities that are gone; profiles are left to the queue. Returns counts (and provider calls for hosted providers).';

--@python recvector.set_filter(name text, expression text) RETURNS jsonb
--@call rv.set_filter(plpy, name, expression)
COMMENT ON FUNCTION recvector.set_filter(text, text) IS
  'Stores a named business rule for rec_recommend(filter => name): a boolean SQL expression over the entity table''s columns and literals (e.g. rental_rate < 3 AND rating <> ''NC-17''), parsed and checked with sqlglot (no subqueries, other tables, or functions outside an allow-list). NULL removes the filter. Returns how many entities it allows.';

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

--@python recvector.chroma_sync(url text, collection text, full_sync boolean DEFAULT false, batch_size integer DEFAULT NULL, tenant text DEFAULT 'default_tenant', database text DEFAULT 'default_database', recreate boolean DEFAULT false, documents boolean DEFAULT true, token_env text DEFAULT NULL, max_retries integer DEFAULT 5, timeout_seconds float8 DEFAULT 30) RETURNS jsonb
--@call rv.chroma_sync(plpy, url, collection, full_sync, batch_size, tenant, database, recreate, documents, token_env, max_retries, timeout_seconds)
COMMENT ON FUNCTION recvector.chroma_sync(text, text, boolean, integer, text, text, boolean, boolean, text, integer, float8) IS
  'Pushes entity vectors to a Chroma collection (cosine space, precomputed embeddings, the composed entity text as document, feature values as metadata) in batches within the server''s maximum batch size. The first call (or full_sync => true) sends everything and deletes ids Chroma has that PostgreSQL does not; later calls send only what changed or was deleted since the last successful sync (watermark in recvector.chroma_targets). Calls are retried with backoff; a failed sync raises and leaves the watermark unchanged, so the next call repairs it. recreate => true drops and rebuilds the collection (after a model change). token_env names a server environment variable holding a Chroma token. Returns a summary.';

--@python recvector.chroma_verify(url text, collection text, sample integer DEFAULT 100, tenant text DEFAULT 'default_tenant', database text DEFAULT 'default_database', token_env text DEFAULT NULL) RETURNS jsonb
--@call rv.chroma_verify(plpy, url, collection, sample, tenant, database, token_env)
COMMENT ON FUNCTION recvector.chroma_verify(text, text, integer, text, text, text) IS
  'Compares a Chroma collection with the entity vectors: both counts, and a random sample of vectors fetched back from Chroma (missing ids, vectors that differ). in_step is true when everything matches.';

-- Offline evaluation (python/recvector/evaluation.py): the split, the training part's models in
-- temporary tables, the production ranking and the baselines, with bootstrap intervals.
CREATE OR REPLACE FUNCTION recvector._py_evaluate(
    k integer, max_users integer, lam double precision, alpha double precision, beta double precision,
    candidate_pool integer, seed bigint, min_positives integer, part text, half_life_days double precision,
    cutoff timestamptz, gamma double precision, protocol text, interests integer, methods text[])
RETURNS TABLE (method text, users integer, recall double precision, ndcg double precision, mrr double precision,
               coverage double precision, intra_list_similarity double precision, popularity_bias double precision,
               ndcg_low double precision, ndcg_high double precision, recvector_minus_this double precision,
               difference_low double precision, difference_high double precision)
LANGUAGE plpython3u AS $$
#PREAMBLE
return rv.evaluate(plpy, k=k, max_users=max_users, lam=lam, alpha=alpha, beta=beta, candidate_pool=candidate_pool,
                   seed=seed, min_positives=min_positives, part=part, half_life_days=half_life_days, cutoff=cutoff,
                   gamma=gamma, protocol=protocol, interests=interests, methods=methods)
$$;
COMMENT ON FUNCTION recvector._py_evaluate(integer, integer, double precision, double precision, double precision, integer, bigint, integer, text, double precision, timestamptz, double precision, text, integer, text[]) IS
  'Internal: PL/Python body of recvector.evaluate().';

CREATE OR REPLACE FUNCTION recvector.evaluate(
    k integer DEFAULT 10, max_users integer DEFAULT NULL, lambda double precision DEFAULT NULL,
    alpha double precision DEFAULT NULL, beta double precision DEFAULT NULL, candidate_pool integer DEFAULT NULL,
    seed bigint DEFAULT 42, min_positives integer DEFAULT 2, part text DEFAULT 'all',
    half_life_days double precision DEFAULT NULL, cutoff timestamptz DEFAULT NULL, gamma double precision DEFAULT NULL,
    protocol text DEFAULT 'auto', interests integer DEFAULT NULL,
    methods text[] DEFAULT ARRAY['recvector', 'popularity', 'random', 'itemknn', 'ease'])
RETURNS TABLE (method text, users integer, recall double precision, ndcg double precision, mrr double precision,
               coverage double precision, intra_list_similarity double precision, popularity_bias double precision,
               ndcg_low double precision, ndcg_high double precision, recvector_minus_this double precision,
               difference_low double precision, difference_high double precision)
LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hnt text;
BEGIN
    RETURN QUERY SELECT * FROM recvector._py_evaluate(k, max_users, lambda, alpha, beta, candidate_pool, seed,
                                                      min_positives, part, half_life_days, cutoff, gamma, protocol,
                                                      interests, methods);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM recvector._rethrow(st, msg, det, hnt);
END
$$;
COMMENT ON FUNCTION recvector.evaluate(integer, integer, double precision, double precision, double precision, integer, bigint, integer, text, double precision, timestamptz, double precision, text, integer, text[]) IS
  'Offline evaluation on the app''s own history (docs/evaluation.md), writing nothing but temporary tables: for each user with at least min_positives positive interactions (up to max_users; part = validation or test keeps one of two disjoint halves of the users), one positive interaction is held out — the most recent (protocol last, the default for dated data), one drawn at random with seed (random, the default for undated data), or with cutoff every one from then on — and every method learns from the rest only: RecVector (the production ranking over neighbours, popularity and profiles built from the training part; scoring arguments override the mapping''s), popularity, random, item-kNN (cosine, 20 neighbours) and EASE (catalogues up to 12,000 entities), all ranking the full catalogue minus the user''s training entities. One row per method: Recall@k, NDCG@k, MRR, catalogue coverage, intra-list similarity, popularity bias, a 95 % bootstrap interval of NDCG and of the paired difference RecVector minus that method.';

-- Tuning (python/recvector/tuning.py): scoring settings searched on the app's own history, stored
-- only when they win on validation beyond the noise.
CREATE OR REPLACE FUNCTION recvector._py_tune(budget_seconds double precision, k integer, max_users integer,
                                              seed bigint, store boolean)
RETURNS jsonb
LANGUAGE plpython3u AS $$
#PREAMBLE
return rv.tune(plpy, budget_seconds=budget_seconds, k=k, max_users=max_users, seed=seed, store=store)
$$;
COMMENT ON FUNCTION recvector._py_tune(double precision, integer, integer, bigint, boolean) IS
  'Internal: PL/Python body of recvector.tune().';

CREATE OR REPLACE FUNCTION recvector.tune(time_budget interval DEFAULT '10 minutes', k integer DEFAULT 10,
                                          max_users integer DEFAULT 2000, seed bigint DEFAULT 42,
                                          store boolean DEFAULT true)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hnt text;
BEGIN
    IF time_budget IS NULL OR time_budget <= interval '0' THEN
        RAISE EXCEPTION 'time_budget must be positive, got %', time_budget USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN recvector._py_tune(extract(epoch FROM time_budget)::double precision, k, max_users, seed, store);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM recvector._rethrow(st, msg, det, hnt);
END
$$;
COMMENT ON FUNCTION recvector.tune(interval, integer, integer, bigint, boolean) IS
  'Searches the scoring settings on the app''s own history within a time budget (docs/evaluation.md#tuning): two positive interactions held out per user (the most recent for dated data, two drawn with seed otherwise), everything learnt from the rest; alpha, beta, gamma on a grid by re-scoring the production ranking''s score parts, interests K and (dated data) a long half-life, then lambda with the production ranking. The best settings are compared with the current ones on the validation items, paired by user, and stored in the mapping only when the 95 % bootstrap interval of the NDCG difference is above zero (and store is true). Returns the decision, the settings and both on the test items beside popularity and item-kNN, with intervals; `recvector tune --html` writes it as a report.';
