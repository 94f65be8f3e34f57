-- Explanations and offline evaluation, from stored vectors only (no embedding, no writes).

CREATE OR REPLACE FUNCTION recvector.explain(
    user_id text, k integer DEFAULT 10, lambda double precision DEFAULT NULL, exploration double precision DEFAULT NULL,
    seed bigint DEFAULT NULL, reasons integer DEFAULT 3)
RETURNS TABLE (rank integer, entity_id text, score double precision, similarity double precision,
               popularity_term double precision, exploration_term double precision, mmr_penalty double precision,
               because jsonb)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    m recvector.mapping := recvector._mapping();
    sc jsonb := m.document -> 'scoring';
    hl double precision := (m.compiled -> 'aggregation' ->> 'half_life_seconds')::double precision;
    prof @vector@.vector;
    seen text[];
    hist jsonb;
BEGIN
    PERFORM recvector._check_k(explain.k);
    PERFORM recvector._check_columns(m.compiled -> 'columns');
    SELECT p.embedding INTO prof FROM recvector.rec_user_profiles AS p WHERE p.user_id = explain.user_id;
    IF prof IS NULL THEN
        RAISE EXCEPTION 'user % has no profile to explain', quote_literal(explain.user_id)
            USING ERRCODE = 'no_data_found',
                  HINT = 'Users without a profile get the most popular entities (rec_recommend''s cold start).';
    END IF;
    -- The user's history with stored vectors, each interaction's weight share w*d/A.
    EXECUTE format($q$
        WITH h AS (%s),
        hv AS (SELECT h.entity_id, h.kind, h.weight, h.occurred_at, v.embedding
               FROM h JOIN recvector.entity_vectors v ON v.entity_id = h.entity_id WHERE h.weight <> 0),
        ref AS (SELECT max(occurred_at) AS t_ref FROM hv),
        w AS (SELECT hv.*, hv.weight * recvector._decay(hv.occurred_at, ref.t_ref, $6) AS wd FROM hv, ref),
        ws AS (SELECT w.*, w.wd / nullif(sum(abs(w.wd)) OVER (), 0) AS share FROM w)
        SELECT coalesce(jsonb_agg(jsonb_build_object('entity_id', entity_id, 'kind', kind, 'at', occurred_at,
                                                     'share', share, 'embedding', embedding::text)), '[]')
        FROM ws $q$, m.compiled ->> 'history')
    INTO hist USING m.compiled -> 'params', explain.user_id, (m.document -> 'aggregation' ->> 'history_limit')::integer,
                    recvector._id_or_null(explain.user_id, m.compiled ->> 'user_id_type'), NULL::timestamptz, hl;
    EXECUTE 'SELECT coalesce(array_agg(entity_id), ''{}'') FROM (' || (m.compiled ->> 'seen') || ') AS s'
    INTO seen USING m.compiled -> 'params', explain.user_id, NULL::integer,
                    recvector._id_or_null(explain.user_id, m.compiled ->> 'user_id_type');
    RETURN QUERY
    WITH r AS (
        SELECT row_number() OVER ()::integer AS rank, x.*
        FROM recvector._rank(prof, seen, explain.k, coalesce(explain.lambda, (sc ->> 'lambda')::double precision),
                             (sc ->> 'alpha')::double precision, (sc ->> 'beta')::double precision,
                             greatest((sc ->> 'candidate_pool')::integer, explain.k),
                             coalesce(explain.exploration, (sc ->> 'exploration')::double precision), explain.seed,
                             NULL, (sc ->> 'ef_search')::integer) AS x)
    SELECT r.rank, r.entity_id, r.score, r.similarity, r.popularity_term, r.exploration_term, r.mmr_penalty,
           (SELECT coalesce(jsonb_agg(c ORDER BY (c ->> 'contribution')::double precision DESC), '[]')
            FROM (SELECT jsonb_build_object('entity_id', e ->> 'entity_id', 'kind', e ->> 'kind', 'at', e -> 'at',
                                            'contribution', (e ->> 'share')::double precision
                                                * (1 - ((e ->> 'embedding')::@vector@.vector OPERATOR(@vector@.<=>) v.embedding))
                                                / nullif(@vector@.vector_norm(prof), 0)) AS c
                  FROM jsonb_array_elements(hist) AS e
                  ORDER BY (e ->> 'share')::double precision * (1 - ((e ->> 'embedding')::@vector@.vector OPERATOR(@vector@.<=>) v.embedding)) DESC
                  LIMIT explain.reasons) AS top)
    FROM r JOIN recvector.entity_vectors AS v ON v.entity_id = r.entity_id
    ORDER BY r.rank;
END
$$;
COMMENT ON FUNCTION recvector.explain(text, integer, double precision, double precision, bigint, integer) IS
  'rec_recommend''s results with their score parts (similarity, popularity term, exploration term, MMR penalty) and, in "because", the user''s interactions that contributed most to each similarity ("because you rented X"): contribution = weight share x cosine(entity, result) / |profile|, from stored vectors.';

CREATE OR REPLACE FUNCTION recvector.evaluate(
    k integer DEFAULT 10, max_users integer DEFAULT NULL, lambda double precision DEFAULT NULL,
    alpha double precision DEFAULT NULL, beta double precision DEFAULT NULL, candidate_pool integer DEFAULT NULL,
    seed bigint DEFAULT 0, min_positives integer DEFAULT 2, part text DEFAULT 'all',
    half_life_days double precision DEFAULT NULL, cutoff timestamptz DEFAULT NULL)
RETURNS TABLE (method text, users integer, recall double precision, ndcg double precision, mrr double precision,
               coverage double precision, intra_list_similarity double precision, popularity_bias double precision)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    m recvector.mapping := recvector._mapping();
    sc jsonb := m.document -> 'scoring';
    v_lambda double precision := coalesce(evaluate.lambda, (sc ->> 'lambda')::double precision);
    v_alpha double precision := coalesce(evaluate.alpha, (sc ->> 'alpha')::double precision);
    v_beta double precision := coalesce(evaluate.beta, (sc ->> 'beta')::double precision);
    v_pool integer := greatest(coalesce(evaluate.candidate_pool, (sc ->> 'candidate_pool')::integer), evaluate.k);
    u record;
    prof @vector@.vector;
    seen text[];
    lists jsonb := '{}';
    recs text[];
    catalog integer;
    avg_pop double precision;
BEGIN
    PERFORM recvector._check_k(evaluate.k);
    PERFORM recvector._check_columns(m.compiled -> 'columns');
    IF evaluate.part NOT IN ('all', 'validation', 'test') THEN
        RAISE EXCEPTION 'part must be all, validation or test, got %', evaluate.part USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT count(*) INTO catalog FROM recvector.entity_vectors;
    SELECT coalesce(avg(ln(1 + coalesce(s.popularity, 0))), 0) INTO avg_pop
    FROM recvector.entity_vectors v LEFT JOIN recvector.rec_entity_stats s USING (entity_id);
    CREATE TEMP TABLE IF NOT EXISTS recvector_eval (method text, user_id text, held text[], recs text[]) ON COMMIT DROP;
    DELETE FROM recvector_eval;
    -- Split: without a cutoff, leave the last positive interaction of each user out; with one, hold
    -- out every positive interaction from the cutoff on. Profiles come from what came before.
    FOR u IN EXECUTE format($q$
        WITH t AS (SELECT * FROM (%s) AS t WHERE t.weight > 0),
        per_user AS (
            SELECT t.user_id, count(*) AS positives,
                   count(*) FILTER (WHERE $6::timestamptz IS NOT NULL AND t.occurred_at < $6) AS before_cut,
                   (array_agg(t.entity_id ORDER BY t.occurred_at DESC, t.entity_id DESC))[1] AS last_entity,
                   max(t.occurred_at) AS last_at,
                   array_agg(DISTINCT t.entity_id) FILTER (WHERE t.occurred_at >= $6) AS after_cut
            FROM t GROUP BY t.user_id)
        SELECT user_id,
               CASE WHEN $6::timestamptz IS NULL THEN ARRAY[last_entity] ELSE after_cut END AS held,
               coalesce($6::timestamptz, last_at) AS cut
        FROM per_user
        WHERE CASE WHEN $6::timestamptz IS NULL THEN positives >= $2
                   ELSE before_cut >= greatest($2 - 1, 1) AND after_cut IS NOT NULL END
          AND ($5 = 'all' OR (($5 = 'validation') = (substr(md5('split:' || $3::text || ':' || user_id), 1, 1) < '8')))
        ORDER BY md5($3::text || user_id) LIMIT $4 $q$, m.compiled ->> 'all_interactions')
        USING m.compiled -> 'params', evaluate.min_positives, evaluate.seed, evaluate.max_users, evaluate.part,
              evaluate.cutoff
    LOOP
        prof := (recvector._profile_from_history(u.user_id, u.cut, evaluate.half_life_days * 86400)).embedding;
        EXECUTE 'SELECT coalesce(array_agg(DISTINCT entity_id), ''{}'') FROM (' || (m.compiled ->> 'history') || ') AS h'
        INTO seen USING m.compiled -> 'params', u.user_id, 2147483647,
                        recvector._id_or_null(u.user_id, m.compiled ->> 'user_id_type'), u.cut;
        IF prof IS NOT NULL THEN
            SELECT array_agg(r.entity_id) INTO recs
            FROM recvector._rank(prof, seen, evaluate.k, v_lambda, v_alpha, v_beta, v_pool, 0, evaluate.seed,
                                 NULL, (sc ->> 'ef_search')::integer) AS r;
            INSERT INTO recvector_eval VALUES ('recvector', u.user_id, u.held, coalesce(recs, '{}'));
        END IF;
        INSERT INTO recvector_eval
        SELECT 'popularity', u.user_id, u.held, coalesce(array_agg(p.entity_id ORDER BY p.popularity DESC, p.entity_id), '{}')
        FROM (SELECT s.entity_id, s.popularity FROM recvector.rec_entity_stats s
              WHERE NOT (s.entity_id = ANY (seen)) ORDER BY s.popularity DESC, s.entity_id LIMIT evaluate.k) AS p;
        INSERT INTO recvector_eval
        SELECT 'random', u.user_id, u.held, coalesce(array_agg(r.entity_id ORDER BY r.h), '{}')
        FROM (SELECT v.entity_id, md5(evaluate.seed::text || ':' || u.user_id || ':' || v.entity_id) AS h
              FROM recvector.entity_vectors v WHERE NOT (v.entity_id = ANY (seen)) ORDER BY 2 LIMIT evaluate.k) AS r;
    END LOOP;
    RETURN QUERY
    WITH scored AS (
        SELECT e.method, e.user_id, e.recs,
               (SELECT count(*) FROM unnest(e.recs) AS r WHERE r = ANY (e.held))::double precision
                   / least(evaluate.k, cardinality(e.held)) AS rec,
               coalesce((SELECT sum(1.0 / log(2, o + 1)) FROM unnest(e.recs) WITH ORDINALITY AS x(r, o)
                         WHERE x.r = ANY (e.held)), 0)
                   / (SELECT sum(1.0 / log(2, j + 1)) FROM generate_series(1, least(evaluate.k, cardinality(e.held))) AS j)
                   AS dcg,
               coalesce(1.0 / (SELECT min(o) FROM unnest(e.recs) WITH ORDINALITY AS x(r, o) WHERE x.r = ANY (e.held)), 0)
                   AS rr
        FROM recvector_eval e
    ), ils AS (
        SELECT s.method, s.user_id,
               (SELECT avg(1 - (a.embedding OPERATOR(@vector@.<=>) b.embedding)) FROM recvector.entity_vectors a, recvector.entity_vectors b
                WHERE a.entity_id = ANY (s.recs) AND b.entity_id = ANY (s.recs) AND a.entity_id < b.entity_id) AS sim,
               (SELECT avg(ln(1 + coalesce(st.popularity, 0))) FROM unnest(s.recs) AS r(id)
                LEFT JOIN recvector.rec_entity_stats st ON st.entity_id = r.id) AS pop
        FROM scored s
    )
    SELECT s.method, count(*)::integer,
           avg(s.rec)::double precision,
           avg(s.dcg)::double precision,
           avg(s.rr)::double precision,
           (SELECT count(DISTINCT r) FROM scored s2, unnest(s2.recs) AS r WHERE s2.method = s.method)::double precision
               / nullif(catalog, 0),
           (SELECT avg(i.sim) FROM ils i WHERE i.method = s.method),
           (SELECT avg(i.pop) FROM ils i WHERE i.method = s.method) / nullif(avg_pop, 0)
    FROM scored s GROUP BY s.method
    ORDER BY CASE s.method WHEN 'recvector' THEN 0 WHEN 'popularity' THEN 1 ELSE 2 END;
END
$$;
COMMENT ON FUNCTION recvector.evaluate(integer, integer, double precision, double precision, double precision, integer, bigint, integer, text, double precision, timestamptz) IS
  'Offline evaluation on the app''s own history, writing nothing but a temporary table: for each user with at least min_positives positive interactions (up to max_users, picked by seed; part = validation or test keeps one of two disjoint halves of the users, split by seed), the last positive one is held out (with cutoff: every positive one from the cutoff on, Recall = hits / min(k, held out)), a profile is built from the earlier ones with the production formula and ranked with the production code, seen items excluded; reports Recall@k, NDCG@k, MRR, catalogue coverage, intra-list similarity and popularity bias (mean ln(1+popularity) of the lists / of the catalogue) beside a popularity and a random baseline on the same split.';
