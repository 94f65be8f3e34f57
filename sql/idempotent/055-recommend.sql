-- The app-facing ranking functions: rec_recommend (a user's top k) and rec_similar (item to item).

CREATE OR REPLACE FUNCTION @extschema@.rec_recommend(
    user_id text,
    k integer DEFAULT 10,
    lambda double precision DEFAULT NULL,
    alpha double precision DEFAULT NULL,
    beta double precision DEFAULT NULL,
    candidate_pool integer DEFAULT NULL,
    exploration double precision DEFAULT NULL,
    seed bigint DEFAULT NULL,
    exclude_seen boolean DEFAULT true,
    filter text DEFAULT NULL,
    exclude text[] DEFAULT NULL,
    gamma double precision DEFAULT NULL,
    page integer DEFAULT 1)
RETURNS TABLE (entity_id text, score double precision)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    m recvector.mapping;
    sc recvector.scoring;
    p record;
    seen text[] := '{}';
    restrict_sql text;
    shown text[];
BEGIN
    IF rec_recommend.user_id IS NULL THEN
        RAISE EXCEPTION 'user_id must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Pass the id of a row of the mapped user table (any type; it is compared as text).';
    END IF;
    PERFORM recvector._check_k(rec_recommend.k);
    IF rec_recommend.page IS NULL OR rec_recommend.page < 1 OR rec_recommend.page::bigint * rec_recommend.k > 10000 THEN
        RAISE EXCEPTION 'page must be 1 or more with page * k at most 10000, got page %', coalesce(rec_recommend.page::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pages count from 1: page => 2 is the second k results.';
    END IF;
    m := recvector._mapping();
    sc := recvector._scoring(jsonb_build_object('lambda', rec_recommend.lambda, 'alpha', rec_recommend.alpha,
                                                'beta', rec_recommend.beta, 'gamma', rec_recommend.gamma,
                                                'candidate_pool', rec_recommend.candidate_pool,
                                                'exploration', rec_recommend.exploration), rec_recommend.k);

    SELECT pr.embedding, pr.interests, pr.interest_weights, pr.cf_candidates, pr.cf_scores INTO p
    FROM recvector.rec_user_profiles AS pr WHERE pr.user_id = rec_recommend.user_id;
    IF rec_recommend.exclude_seen THEN
        seen := recvector._mapped_seen(m.compiled -> 'params', rec_recommend.user_id, NULL::integer,
                                       recvector._id_or_null(rec_recommend.user_id, m.compiled ->> 'user_id_type'));
    END IF;
    -- NULL ids in exclude are ignored (a NULL can never match an entity); hidden entities always go.
    seen := seen || coalesce(array_remove(rec_recommend.exclude, NULL), '{}') || recvector._hidden(rec_recommend.user_id);
    IF rec_recommend.filter IS NOT NULL THEN
        SELECT f.compiled INTO restrict_sql FROM recvector.filters AS f WHERE f.name = rec_recommend.filter;
        IF restrict_sql IS NULL THEN
            RAISE EXCEPTION 'unknown filter %', quote_literal(rec_recommend.filter) USING ERRCODE = 'undefined_object',
                HINT = 'Define it first: SELECT recvector.set_filter(''name'', ''<boolean expression over entity columns>'');';
        END IF;
    END IF;

    IF p.embedding IS NULL AND p.cf_candidates IS NULL AND sc.exploration = 0 AND restrict_sql IS NULL THEN
        -- Cold start: the most popular entities minus what was seen, straight from the popularity index,
        -- scored ln(1 + popularity) / ln(1 + the largest popularity) (the popularity term, 0..1).
        RETURN QUERY
        SELECT s.entity_id, ln(1 + s.popularity) / recvector._log_max_popularity()
        FROM recvector.rec_entity_stats AS s
        WHERE s.popularity > 0 AND NOT (s.entity_id = ANY (seen))
        ORDER BY s.popularity DESC, s.entity_id
        LIMIT rec_recommend.k OFFSET (rec_recommend.page - 1) * rec_recommend.k;
        RETURN;
    ELSIF p.embedding IS NULL AND p.cf_candidates IS NULL THEN
        -- Cold start with exploration noise or a filter.
        RETURN QUERY EXECUTE
        'SELECT s.entity_id,
                ln(1 + s.popularity) / mx.m
                + CASE WHEN $1 > 0 THEN $1 * recvector._noise($2, s.entity_id) ELSE 0 END AS score
         FROM recvector.rec_entity_stats AS s, (SELECT recvector._log_max_popularity() AS m) AS mx
         WHERE s.popularity > 0 AND NOT (s.entity_id = ANY ($3))'
         || CASE WHEN restrict_sql IS NULL THEN '' ELSE ' AND s.entity_id IN (' || restrict_sql || ')' END || '
         ORDER BY 2 DESC, s.entity_id
         LIMIT $4 OFFSET $5'
        USING sc.exploration, rec_recommend.seed, seen, rec_recommend.k, (rec_recommend.page - 1) * rec_recommend.k;
        RETURN;
    END IF;

    -- Page n: the k best after pages 1 .. n-1 (each ranked as its own call would, then excluded), so
    -- pages never overlap and page n is the same whenever it is asked with the same data and seed.
    FOR i IN 1 .. rec_recommend.page - 1 LOOP
        shown := ARRAY(SELECT r.entity_id
                       FROM recvector._rank(coalesce(p.interests, CASE WHEN p.embedding IS NOT NULL THEN ARRAY[p.embedding] END),
                                            p.interest_weights, p.cf_candidates, p.cf_scores, seen, rec_recommend.k, sc,
                                            rec_recommend.seed, restrict_sql) AS r);
        EXIT WHEN cardinality(shown) = 0;
        seen := seen || shown;
    END LOOP;
    RETURN QUERY
    SELECT r.entity_id, r.score
    FROM recvector._rank(coalesce(p.interests, CASE WHEN p.embedding IS NOT NULL THEN ARRAY[p.embedding] END),
                         p.interest_weights, p.cf_candidates, p.cf_scores, seen, rec_recommend.k, sc,
                         rec_recommend.seed, restrict_sql) AS r;
END
$$;
COMMENT ON FUNCTION @extschema@.rec_recommend(text, integer, double precision, double precision, double precision, integer, double precision, bigint, boolean, text, text[], double precision, integer) IS
  'Top-k recommendations for a user, in rank order. Candidates: the HNSW neighbours of each of the user''s interests, the collaborative neighbours of their recent positive entities, and the most popular; scored alpha*similarity + beta*popularity + gamma*collaborative (each term on a 0..1 scale; + exploration*noise, reproducible with seed) and re-ranked by MMR with lambda (1 = no diversification). Excludes entities the user interacted with, those the user hid (recvector.hide) and those in exclude (NULLs ignored); page n (from 1) gives the next k after pages 1 .. n-1, never overlapping them; filter names a rule made with recvector.set_filter. Users without a profile get the most popular entities, scored ln(1 + popularity) / ln(1 + the largest popularity). NULL arguments take the mapping''s scoring defaults. For app roles: GRANT recvector_app TO <role>.';

CREATE OR REPLACE FUNCTION @extschema@.rec_recommend(
    user_id bigint,
    k integer DEFAULT 10,
    lambda double precision DEFAULT NULL,
    alpha double precision DEFAULT NULL,
    beta double precision DEFAULT NULL,
    candidate_pool integer DEFAULT NULL,
    exploration double precision DEFAULT NULL,
    seed bigint DEFAULT NULL,
    exclude_seen boolean DEFAULT true,
    filter text DEFAULT NULL,
    exclude text[] DEFAULT NULL,
    gamma double precision DEFAULT NULL,
    page integer DEFAULT 1)
RETURNS TABLE (entity_id text, score double precision)
LANGUAGE sql VOLATILE AS $$
    SELECT * FROM @extschema@.rec_recommend(user_id::text, k, lambda, alpha, beta, candidate_pool, exploration, seed,
                                            exclude_seen, filter, exclude, gamma, page)
$$;
COMMENT ON FUNCTION @extschema@.rec_recommend(bigint, integer, double precision, double precision, double precision, integer, double precision, bigint, boolean, text, text[], double precision, integer) IS
  'Integer-id form of rec_recommend(text, ...): rec_recommend(42, 10, 0.7).';

CREATE OR REPLACE FUNCTION @extschema@.rec_similar(entity text, k integer DEFAULT 10, mode text DEFAULT 'content')
RETURNS TABLE (entity_id text, score double precision)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    q @vector@.vector;
    old_ef text;
BEGIN
    IF rec_similar.entity IS NULL THEN
        RAISE EXCEPTION 'entity_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM recvector._check_k(rec_similar.k);
    IF rec_similar.mode IS NULL OR rec_similar.mode NOT IN ('content', 'cf', 'hybrid') THEN
        RAISE EXCEPTION 'mode must be content, cf or hybrid, got %', coalesce(quote_literal(rec_similar.mode), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'content: nearest stored vectors; cf: the entities the same users liked (recvector.rebuild_neighbors); hybrid: both, half each.';
    END IF;
    SELECT v.embedding INTO q FROM recvector.entity_vectors AS v WHERE v.entity_id = rec_similar.entity;
    IF q IS NULL THEN
        RAISE EXCEPTION 'entity % has no vector: it is not a known entity', quote_literal(rec_similar.entity)
            USING ERRCODE = 'no_data_found',
                  HINT = 'Check the id against the mapped entity table; new entities get vectors from SELECT recvector.bootstrap();';
    END IF;
    IF rec_similar.mode = 'cf' THEN
        RETURN QUERY
        SELECT n.id, n.w::double precision
        FROM recvector.item_neighbors AS nb, unnest(nb.neighbor_ids, nb.weights) WITH ORDINALITY AS n(id, w, o)
        WHERE nb.entity_id = rec_similar.entity
        ORDER BY n.o LIMIT rec_similar.k;
        RETURN;
    END IF;
    old_ef := current_setting('hnsw.ef_search', true);
    PERFORM set_config('hnsw.ef_search', least(greatest(2 * rec_similar.k + 1, 40), 1000)::text, true);
    IF rec_similar.mode = 'content' THEN
        RETURN QUERY
        SELECT c.entity_id, 1 - c.d FROM (
            SELECT v.entity_id, v.embedding OPERATOR(@vector@.<=>) q AS d FROM recvector.entity_vectors AS v
            ORDER BY v.embedding OPERATOR(@vector@.<=>) q LIMIT rec_similar.k + 1) AS c
        WHERE c.entity_id <> rec_similar.entity ORDER BY c.d, c.entity_id LIMIT rec_similar.k;
    ELSE
        -- hybrid: 0.5 * cosine + 0.5 * neighbour weight / the strongest, over both candidate lists.
        RETURN QUERY
        WITH content AS (
            SELECT v.entity_id FROM recvector.entity_vectors AS v
            ORDER BY v.embedding OPERATOR(@vector@.<=>) q LIMIT 2 * rec_similar.k + 1),
        cf AS (
            SELECT n.id AS entity_id, n.w::double precision AS w
            FROM recvector.item_neighbors AS nb, unnest(nb.neighbor_ids, nb.weights) AS n(id, w)
            WHERE nb.entity_id = rec_similar.entity),
        cand AS (SELECT c.entity_id FROM content AS c UNION SELECT f.entity_id FROM cf AS f)
        SELECT c.entity_id,
               0.5 * (1 - (v.embedding OPERATOR(@vector@.<=>) q))
               + 0.5 * coalesce(f.w / nullif((SELECT max(f2.w) FROM cf AS f2), 0), 0) AS score
        FROM cand AS c JOIN recvector.entity_vectors AS v ON v.entity_id = c.entity_id
        LEFT JOIN cf AS f ON f.entity_id = c.entity_id
        WHERE c.entity_id <> rec_similar.entity
        ORDER BY 2 DESC, c.entity_id LIMIT rec_similar.k;
    END IF;
    PERFORM set_config('hnsw.ef_search', coalesce(old_ef, '40'), true);
END
$$;
COMMENT ON FUNCTION @extschema@.rec_similar(text, integer, text) IS
  'The k entities most similar to the given one. mode content (default): nearest stored vectors, score = cosine similarity; cf: the entities the same users liked (recvector.rebuild_neighbors), score = neighbour weight; hybrid: both lists, score = 0.5 cosine + 0.5 neighbour weight relative to the strongest. No user needed.';

CREATE OR REPLACE FUNCTION @extschema@.rec_similar(entity bigint, k integer DEFAULT 10, mode text DEFAULT 'content')
RETURNS TABLE (entity_id text, score double precision)
LANGUAGE sql VOLATILE AS $$
    SELECT * FROM @extschema@.rec_similar(entity::text, k, mode)
$$;
COMMENT ON FUNCTION @extschema@.rec_similar(bigint, integer, text) IS 'Integer-id form of rec_similar(text, integer, text).';

-- Per-user hiding ("not interested"): the user's hidden entities join what rec_recommend excludes.
CREATE OR REPLACE FUNCTION recvector.hide(user_id text, entity_id text, until timestamptz DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF hide.user_id IS NULL OR hide.entity_id IS NULL THEN
        RAISE EXCEPTION 'user_id and entity_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF hide.until IS NOT NULL AND NOT (hide.until > now() AND hide.until < 'infinity') THEN
        RAISE EXCEPTION 'until must be a finite time in the future (or NULL for good), got %', hide.until
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM recvector.hidden AS h WHERE h.user_id = hide.user_id AND h.until <= now();
    INSERT INTO recvector.hidden AS h (user_id, entity_id, hidden_at, until)
    VALUES (hide.user_id, hide.entity_id, now(), hide.until)
    ON CONFLICT ON CONSTRAINT hidden_pkey DO UPDATE SET hidden_at = excluded.hidden_at, until = excluded.until;
END
$$;
COMMENT ON FUNCTION recvector.hide(text, text, timestamptz) IS
  'Hides an entity from one user''s recommendations (rec_recommend, recvector.explain), for good or until the given time; hiding it again replaces the time. Undo with recvector.unhide. For app roles (recvector_app).';

CREATE OR REPLACE FUNCTION recvector.unhide(user_id text, entity_id text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM recvector.hidden AS h WHERE h.user_id = unhide.user_id AND h.entity_id = unhide.entity_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n > 0;
END
$$;
COMMENT ON FUNCTION recvector.unhide(text, text) IS
  'Shows a hidden entity to the user again; true if it was hidden. For app roles (recvector_app).';

-- What a user must not be shown: the entities they hid, while the hiding lasts.
CREATE OR REPLACE FUNCTION recvector._hidden(user_id text)
RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(h.entity_id), '{}') FROM recvector.hidden AS h
    WHERE h.user_id = _hidden.user_id AND (h.until IS NULL OR h.until > now())
$$;
COMMENT ON FUNCTION recvector._hidden(text) IS
  'Internal: the entities a user has hidden now (recvector.hide), excluded by rec_recommend and explain.';
