-- Serving path: SQL and PL/pgSQL only (works where pgvector is allowed and PL/Python is not).
--
-- rec_recommend: one profile row, one HNSW query for a candidate pool (ordered by the bare
-- distance operator, so the index is used), then re-ranking of that pool:
--   relevance = alpha * cosine_similarity + beta * ln(1 + popularity) [+ exploration * noise]
--   MMR: repeatedly take argmax  lambda * relevance - (1 - lambda) * max cosine_similarity to the
--        entities already taken.
-- Rows come back in rank order; score is the relevance of each.

CREATE OR REPLACE FUNCTION recvector._check_k(k integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF k IS NULL OR k < 1 OR k > 10000 THEN
        RAISE EXCEPTION 'k must be between 1 and 10000, got %', coalesce(k::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Ask for the number of results you will show, e.g. k => 10.';
    END IF;
END
$$;
COMMENT ON FUNCTION recvector._check_k(integer) IS 'Internal: validates a result count.';

-- The ranking itself, for any profile vector: rec_recommend passes the stored profile;
-- recvector.evaluate passes profiles built from the training part of a user's history.
CREATE OR REPLACE FUNCTION recvector._rank(
    prof vector, seen text[], k integer, v_lambda double precision, v_alpha double precision,
    v_beta double precision, v_pool integer, v_eps double precision, seed bigint, restrict_sql text DEFAULT NULL,
    v_ef integer DEFAULT NULL)
RETURNS TABLE (entity_id text, score double precision, similarity double precision,
               popularity_term double precision, exploration_term double precision, mmr_penalty double precision)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    ids text[];
    vecs @vector@.vector[];
    sims double precision[];
    pops double precision[];
    explore double precision[];
    rel double precision[];
    maxsim double precision[];
    taken boolean[];
    n integer;
    best integer;
    bv @vector@.vector;
    old_ef text;
    old_iter text;
BEGIN
    -- Candidate pool from the HNSW index (the iterative scan keeps the pool full despite the seen
    -- filter); score parts and relevance alpha*similarity + beta*ln(1+popularity) + exploration*noise
    -- computed in the same statement. Without a filter the statements are static (plans cached).
    old_ef := current_setting('hnsw.ef_search', true);
    old_iter := current_setting('hnsw.iterative_scan', true);
    PERFORM set_config('hnsw.ef_search', least(greatest(v_pool, coalesce(v_ef, 40), 40), 1000)::text, true);
    PERFORM set_config('hnsw.iterative_scan', 'relaxed_order', true);

    IF v_lambda >= 1 THEN
        -- Relevance only: one statement, no vectors leave the index scan.
        IF restrict_sql IS NULL THEN
            -- (OFFSET 0 keeps the score parts computed once each, then summed.)
            RETURN QUERY
            SELECT c.entity_id, v_alpha * c.sim + c.pop + c.expl, c.sim, c.pop, c.expl, 0::double precision
            FROM (SELECT p.entity_id, p.d, 1 - p.d AS sim, v_beta * ln(1 + coalesce(s.popularity, 0)) AS pop,
                         CASE WHEN v_eps > 0 THEN v_eps * recvector._noise(_rank.seed, p.entity_id) ELSE 0 END AS expl
                  FROM (SELECT v.entity_id, v.embedding OPERATOR(@vector@.<=>) prof AS d
                        FROM recvector.entity_vectors AS v
                        WHERE NOT (v.entity_id = ANY (seen))
                        ORDER BY v.embedding OPERATOR(@vector@.<=>) prof
                        LIMIT v_pool) AS p
                  LEFT JOIN recvector.rec_entity_stats AS s ON s.entity_id = p.entity_id
                  OFFSET 0) AS c
            ORDER BY 2 DESC, c.d, c.entity_id
            LIMIT _rank.k;
        ELSE
            RETURN QUERY EXECUTE
            'SELECT c.entity_id, $4 * c.sim + c.pop + c.expl, c.sim, c.pop, c.expl, 0::double precision
             FROM (SELECT p.entity_id, p.d, 1 - p.d AS sim, $5 * ln(1 + coalesce(s.popularity, 0)) AS pop,
                          CASE WHEN $6 > 0 THEN $6 * recvector._noise($7, p.entity_id) ELSE 0 END AS expl
                   FROM (SELECT v.entity_id, v.embedding OPERATOR(@vector@.<=>) $1 AS d
                         FROM recvector.entity_vectors AS v
                         WHERE NOT (v.entity_id = ANY ($2)) AND v.entity_id IN (' || restrict_sql || ')
                         ORDER BY v.embedding OPERATOR(@vector@.<=>) $1
                         LIMIT $3) AS p
                   LEFT JOIN recvector.rec_entity_stats AS s ON s.entity_id = p.entity_id
                   OFFSET 0) AS c
             ORDER BY 2 DESC, c.d, c.entity_id
             LIMIT $8'
            USING prof, seen, v_pool, v_alpha, v_beta, v_eps, _rank.seed, _rank.k;
        END IF;
        PERFORM set_config('hnsw.ef_search', coalesce(old_ef, '40'), true);
        PERFORM set_config('hnsw.iterative_scan', coalesce(old_iter, 'off'), true);
        RETURN;
    END IF;

    -- MMR: the pool with its vectors, in distance order (arrays built in one pass, so aligned).
    IF restrict_sql IS NULL THEN
        SELECT array_agg(c.entity_id), array_agg(c.embedding), array_agg(c.sim), array_agg(c.pop),
               array_agg(c.expl), array_agg(v_alpha * c.sim + c.pop + c.expl)
        INTO ids, vecs, sims, pops, explore, rel
        FROM (SELECT p.entity_id, p.embedding, p.d, 1 - p.d AS sim,
                     v_beta * ln(1 + coalesce(s.popularity, 0)) AS pop,
                     CASE WHEN v_eps > 0 THEN v_eps * recvector._noise(_rank.seed, p.entity_id) ELSE 0 END AS expl
              FROM (SELECT v.entity_id, v.embedding, v.embedding OPERATOR(@vector@.<=>) prof AS d
                    FROM recvector.entity_vectors AS v
                    WHERE NOT (v.entity_id = ANY (seen))
                    ORDER BY v.embedding OPERATOR(@vector@.<=>) prof
                    LIMIT v_pool) AS p
              LEFT JOIN recvector.rec_entity_stats AS s ON s.entity_id = p.entity_id
              ORDER BY p.d, p.entity_id) AS c;
    ELSE
        EXECUTE 'SELECT array_agg(c.entity_id), array_agg(c.embedding), array_agg(c.sim), array_agg(c.pop),
                            array_agg(c.expl), array_agg($4 * c.sim + c.pop + c.expl)
                     FROM (SELECT p.entity_id, p.embedding, p.d, 1 - p.d AS sim,
                                  $5 * ln(1 + coalesce(s.popularity, 0)) AS pop,
                                  CASE WHEN $6 > 0 THEN $6 * recvector._noise($7, p.entity_id) ELSE 0 END AS expl
                           FROM (SELECT v.entity_id, v.embedding, v.embedding OPERATOR(@vector@.<=>) $1 AS d
                                 FROM recvector.entity_vectors AS v
                                 WHERE NOT (v.entity_id = ANY ($2)) AND v.entity_id IN (' || restrict_sql || ')
                                 ORDER BY v.embedding OPERATOR(@vector@.<=>) $1
                                 LIMIT $3) AS p
                           LEFT JOIN recvector.rec_entity_stats AS s ON s.entity_id = p.entity_id
                           ORDER BY p.d, p.entity_id) AS c'
        INTO ids, vecs, sims, pops, explore, rel
        USING prof, seen, v_pool, v_alpha, v_beta, v_eps, _rank.seed;
    END IF;
    PERFORM set_config('hnsw.ef_search', coalesce(old_ef, '40'), true);
    PERFORM set_config('hnsw.iterative_scan', coalesce(old_iter, 'off'), true);
    n := coalesce(cardinality(ids), 0);
    IF n = 0 THEN
        RETURN;
    END IF;

    -- Greedy MMR: take argmax lambda*relevance - (1-lambda)*max similarity to what is taken; one
    -- statement per step both updates every candidate's max similarity and picks the next one.
    taken := array_fill(false, ARRAY[n]);
    maxsim := array_fill(NULL::double precision, ARRAY[n]);
    SELECT u.o INTO best FROM unnest(rel) WITH ORDINALITY AS u(r, o) ORDER BY u.r DESC, u.o LIMIT 1;
    FOR step IN 1 .. least(_rank.k, n) LOOP
        taken[best] := true;
        entity_id := ids[best];
        score := rel[best];
        similarity := sims[best];
        popularity_term := pops[best];
        exploration_term := explore[best];
        mmr_penalty := (1 - v_lambda) * coalesce(maxsim[best], 0);
        RETURN NEXT;
        EXIT WHEN step = least(_rank.k, n);
        bv := vecs[best];
        SELECT array_agg(x.ms2), (array_agg(x.o ORDER BY v_lambda * x.r - (1 - v_lambda) * coalesce(x.ms2, 0) DESC, x.o)
                                  FILTER (WHERE NOT x.t))[1]
        INTO maxsim, best
        FROM (SELECT u.o, u.t, u.r, CASE WHEN u.t THEN u.ms ELSE greatest(u.ms, 1 - (u.v OPERATOR(@vector@.<=>) bv)) END AS ms2
              FROM unnest(maxsim, vecs, taken, rel) WITH ORDINALITY AS u(ms, v, t, r, o)) AS x;
    END LOOP;
END
$$;
COMMENT ON FUNCTION recvector._rank(vector, text[], integer, double precision, double precision, double precision, integer, double precision, bigint, text, integer) IS
  'Internal: HNSW candidate pool around a profile vector minus seen (and within restrict_sql, a compiled filter; the iterative scan keeps the pool full; hnsw.ef_search = max(pool, v_ef)), relevance alpha*similarity + beta*ln(1+popularity) + exploration*noise, MMR with lambda; returns each result''s score parts.';

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
    exclude text[] DEFAULT NULL)
RETURNS TABLE (entity_id text, score double precision)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    m recvector.mapping;
    sc jsonb;
    v_lambda double precision;
    v_alpha double precision;
    v_beta double precision;
    v_pool integer;
    v_eps double precision;
    prof @vector@.vector;
    seen text[] := '{}';
    restrict_sql text;
BEGIN
    IF rec_recommend.user_id IS NULL THEN
        RAISE EXCEPTION 'user_id must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Pass the id of a row of the mapped user table (any type; it is compared as text).';
    END IF;
    PERFORM recvector._check_k(rec_recommend.k);
    m := recvector._mapping();
    sc := m.document -> 'scoring';
    v_lambda := coalesce(rec_recommend.lambda, (sc ->> 'lambda')::double precision);
    v_alpha := coalesce(rec_recommend.alpha, (sc ->> 'alpha')::double precision);
    v_beta := coalesce(rec_recommend.beta, (sc ->> 'beta')::double precision);
    v_pool := coalesce(rec_recommend.candidate_pool, (sc ->> 'candidate_pool')::integer);
    v_eps := coalesce(rec_recommend.exploration, (sc ->> 'exploration')::double precision);
    IF v_lambda IS NULL OR NOT (v_lambda BETWEEN 0 AND 1) THEN
        RAISE EXCEPTION 'lambda must be between 0 and 1, got %', v_lambda USING ERRCODE = 'invalid_parameter_value',
            HINT = '1 ranks by relevance only; lower values trade relevance for diversity (MMR).';
    END IF;
    IF v_eps IS NULL OR NOT (v_eps BETWEEN 0 AND 1) THEN
        RAISE EXCEPTION 'exploration must be between 0 and 1, got %', v_eps USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_pool IS NULL OR v_pool < 1 OR v_pool > 10000 THEN
        RAISE EXCEPTION 'candidate_pool must be between 1 and 10000, got %', v_pool USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_alpha IS NULL OR v_beta IS NULL OR v_alpha IN ('NaN', 'Infinity', '-Infinity')
       OR v_beta IN ('NaN', 'Infinity', '-Infinity') THEN
        RAISE EXCEPTION 'alpha and beta must be finite numbers, got % and %', v_alpha, v_beta
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_pool := greatest(v_pool, rec_recommend.k);

    SELECT p.embedding INTO prof FROM recvector.rec_user_profiles AS p WHERE p.user_id = rec_recommend.user_id;
    IF rec_recommend.exclude_seen THEN
        seen := recvector._mapped_seen(m.compiled -> 'params', rec_recommend.user_id, NULL::integer,
                                       recvector._id_or_null(rec_recommend.user_id, m.compiled ->> 'user_id_type'));
    END IF;

    -- NULL ids in exclude are ignored (a NULL can never match an entity).
    seen := seen || coalesce(array_remove(rec_recommend.exclude, NULL), '{}');
    IF rec_recommend.filter IS NOT NULL THEN
        SELECT f.compiled INTO restrict_sql FROM recvector.filters AS f WHERE f.name = rec_recommend.filter;
        IF restrict_sql IS NULL THEN
            RAISE EXCEPTION 'unknown filter %', quote_literal(rec_recommend.filter) USING ERRCODE = 'undefined_object',
                HINT = 'Define it first: SELECT recvector.set_filter(''name'', ''<boolean expression over entity columns>'');';
        END IF;
    END IF;

    IF prof IS NULL AND v_eps = 0 AND restrict_sql IS NULL THEN
        -- Cold start: the most popular entities minus what was seen, straight from the popularity index.
        RETURN QUERY
        SELECT s.entity_id, ln(1 + s.popularity)
        FROM recvector.rec_entity_stats AS s
        WHERE s.popularity > 0 AND NOT (s.entity_id = ANY (seen))
        ORDER BY s.popularity DESC, s.entity_id
        LIMIT rec_recommend.k;
        RETURN;
    ELSIF prof IS NULL THEN
        -- Cold start with exploration noise or a filter.
        RETURN QUERY EXECUTE
        'SELECT s.entity_id,
                ln(1 + s.popularity) + CASE WHEN $1 > 0 THEN $1 * recvector._noise($2, s.entity_id) ELSE 0 END AS score
         FROM recvector.rec_entity_stats AS s
         WHERE s.popularity > 0 AND NOT (s.entity_id = ANY ($3))'
         || CASE WHEN restrict_sql IS NULL THEN '' ELSE ' AND s.entity_id IN (' || restrict_sql || ')' END || '
         ORDER BY 2 DESC, s.entity_id
         LIMIT $4'
        USING v_eps, rec_recommend.seed, seen, rec_recommend.k;
        RETURN;
    END IF;

    RETURN QUERY SELECT r.entity_id, r.score
                 FROM recvector._rank(prof, seen, rec_recommend.k, v_lambda, v_alpha, v_beta, v_pool, v_eps,
                                      rec_recommend.seed, restrict_sql, (sc ->> 'ef_search')::integer) AS r;
END
$$;
COMMENT ON FUNCTION @extschema@.rec_recommend(text, integer, double precision, double precision, double precision, integer, double precision, bigint, boolean, text, text[]) IS
  'Top-k recommendations for a user: HNSW candidate pool around the stored profile, scored alpha*similarity + beta*ln(1+popularity) (+ exploration*noise, reproducible with seed), re-ranked by MMR with lambda (1 = no diversification). Excludes entities the user interacted with and those in exclude; filter names a rule made with recvector.set_filter. Users without a profile get the most popular entities. NULL arguments take the mapping''s scoring defaults. Rows come in rank order.';

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
    exclude text[] DEFAULT NULL)
RETURNS TABLE (entity_id text, score double precision)
LANGUAGE sql VOLATILE AS $$
    SELECT * FROM @extschema@.rec_recommend(user_id::text, k, lambda, alpha, beta, candidate_pool, exploration, seed,
                                            exclude_seen, filter, exclude)
$$;
COMMENT ON FUNCTION @extschema@.rec_recommend(bigint, integer, double precision, double precision, double precision, integer, double precision, bigint, boolean, text, text[]) IS
  'Integer-id form of rec_recommend(text, ...): rec_recommend(42, 10, 0.7).';

CREATE OR REPLACE FUNCTION @extschema@.rec_similar(entity text, k integer DEFAULT 10)
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
    SELECT v.embedding INTO q FROM recvector.entity_vectors AS v WHERE v.entity_id = rec_similar.entity;
    IF q IS NULL THEN
        RAISE EXCEPTION 'entity % has no vector', quote_literal(rec_similar.entity)
            USING ERRCODE = 'no_data_found',
                  HINT = 'Check the id against the mapped entity table; new entities get vectors from SELECT recvector.bootstrap();';
    END IF;
    old_ef := current_setting('hnsw.ef_search', true);
    PERFORM set_config('hnsw.ef_search', least(greatest(rec_similar.k + 1, 40), 1000)::text, true);
    RETURN QUERY EXECUTE
        'SELECT c.entity_id, 1 - c.d FROM (
             SELECT v.entity_id, v.embedding OPERATOR(@vector@.<=>) $1 AS d FROM recvector.entity_vectors AS v
             ORDER BY v.embedding OPERATOR(@vector@.<=>) $1 LIMIT $2) AS c
         WHERE c.entity_id <> $3 ORDER BY c.d, c.entity_id LIMIT $2 - 1'
        USING q, rec_similar.k + 1, rec_similar.entity;
    PERFORM set_config('hnsw.ef_search', coalesce(old_ef, '40'), true);
END
$$;
COMMENT ON FUNCTION @extschema@.rec_similar(text, integer) IS
  'The k entities whose stored vectors are nearest (cosine) to the given entity''s, with score = cosine similarity. Item-to-item, no user needed.';

CREATE OR REPLACE FUNCTION @extschema@.rec_similar(entity bigint, k integer DEFAULT 10)
RETURNS TABLE (entity_id text, score double precision)
LANGUAGE sql VOLATILE AS $$
    SELECT * FROM @extschema@.rec_similar(entity::text, k)
$$;
COMMENT ON FUNCTION @extschema@.rec_similar(bigint, integer) IS 'Integer-id form of rec_similar(text, integer).';
