-- Explanations, from stored vectors and neighbours only (no embedding, no writes).

CREATE OR REPLACE FUNCTION recvector.explain(
    user_id text, k integer DEFAULT 10, lambda double precision DEFAULT NULL, exploration double precision DEFAULT NULL,
    seed bigint DEFAULT NULL, reasons integer DEFAULT 3, alpha double precision DEFAULT NULL,
    beta double precision DEFAULT NULL, gamma double precision DEFAULT NULL, candidate_pool integer DEFAULT NULL,
    filter text DEFAULT NULL, exclude text[] DEFAULT NULL)
RETURNS TABLE (rank integer, entity_id text, score double precision, similarity double precision,
               popularity_term double precision, collaborative_term double precision, exploration_term double precision,
               mmr_penalty double precision, sources text, because jsonb)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    m recvector.mapping := recvector._mapping();
    sc recvector.scoring;
    hl double precision := (m.compiled -> 'aggregation' ->> 'half_life_seconds')::double precision;
    p record;
    seen text[];
    hist jsonb;
    restrict_sql text;
BEGIN
    IF explain.user_id IS NULL THEN
        RAISE EXCEPTION 'user_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM recvector._check_k(explain.k);
    IF explain.reasons IS NULL OR explain.reasons < 0 THEN
        RAISE EXCEPTION 'reasons must be 0 or more, got %', explain.reasons USING ERRCODE = 'invalid_parameter_value';
    END IF;
    sc := recvector._scoring(jsonb_build_object('lambda', explain.lambda, 'alpha', explain.alpha, 'beta', explain.beta,
                                                'gamma', explain.gamma, 'candidate_pool', explain.candidate_pool,
                                                'exploration', explain.exploration), explain.k);
    IF explain.filter IS NOT NULL THEN
        SELECT f.compiled INTO restrict_sql FROM recvector.filters AS f WHERE f.name = explain.filter;
        IF restrict_sql IS NULL THEN
            RAISE EXCEPTION 'unknown filter %', quote_literal(explain.filter) USING ERRCODE = 'undefined_object';
        END IF;
    END IF;
    SELECT pr.embedding, pr.interests, pr.interest_weights, pr.cf_candidates, pr.cf_scores INTO p
    FROM recvector.rec_user_profiles AS pr WHERE pr.user_id = explain.user_id;
    seen := recvector._mapped_seen(m.compiled -> 'params', explain.user_id, NULL::integer,
                                   recvector._id_or_null(explain.user_id, m.compiled ->> 'user_id_type'))
            || coalesce(array_remove(explain.exclude, NULL), '{}') || recvector._hidden(explain.user_id);
    IF p.embedding IS NULL AND p.cf_candidates IS NULL THEN
        -- Cold start: what rec_recommend returns, with nothing personal to explain.
        RETURN QUERY
        -- (The score is the popularity term, ln(1 + popularity) / ln(1 + the largest), plus any noise.)
        SELECT r.rank::integer, r.entity_id, r.score, NULL::double precision, r.pop, 0::double precision,
               r.score - r.pop, 0::double precision, 'popular'::text, '[]'::jsonb
        FROM (SELECT row_number() OVER (ORDER BY x.score DESC, x.entity_id) AS rank, x.entity_id, x.score,
                     ln(1 + st.popularity) / recvector._log_max_popularity() AS pop
              FROM @extschema@.rec_recommend(explain.user_id, explain.k, filter => explain.filter,
                                             exclude => explain.exclude, exploration => explain.exploration,
                                             seed => explain.seed) AS x
              JOIN recvector.rec_entity_stats AS st ON st.entity_id = x.entity_id) AS r
        ORDER BY r.rank;
        RETURN;
    END IF;
    -- The history behind the profile (the generated query), each interaction's weight share w*d/A.
    SELECT coalesce(jsonb_agg(jsonb_build_object('entity_id', ws.entity_id, 'kind', ws.kind, 'at', ws.occurred_at,
                                                 'share', ws.share, 'wd', ws.wd, 'embedding', ws.embedding::text)), '[]')
    INTO hist
    FROM (SELECT w.*, w.wd / nullif(sum(abs(w.wd)) OVER (), 0) AS share
          FROM (SELECT hv.*, hv.weight * recvector._decay(hv.occurred_at, max(hv.occurred_at) OVER (), hl) AS wd
                FROM (SELECT h.entity_id, h.kind, h.weight, h.occurred_at, v.embedding
                      FROM recvector._mapped_history(m.compiled -> 'params', explain.user_id,
                                                     (m.document -> 'aggregation' ->> 'history_limit')::integer,
                                                     recvector._id_or_null(explain.user_id, m.compiled ->> 'user_id_type'),
                                                     NULL) AS h
                      JOIN recvector.entity_vectors AS v ON v.entity_id = h.entity_id
                      WHERE h.weight <> 0) AS hv) AS w) AS ws;
    RETURN QUERY
    WITH r AS (
        SELECT row_number() OVER ()::integer AS rank, x.*
        FROM recvector._rank(coalesce(p.interests, CASE WHEN p.embedding IS NOT NULL THEN ARRAY[p.embedding] END),
                             p.interest_weights, p.cf_candidates, p.cf_scores, seen, explain.k, sc, explain.seed,
                             restrict_sql) AS x)
    SELECT r.rank, r.entity_id, r.score, r.similarity, r.popularity_term, r.collaborative_term, r.exploration_term,
           r.mmr_penalty, r.sources,
           -- "Because": the interactions whose vectors make up the similarity to the profile
           -- (share x cosine / |profile|, which add up to the cosine with the mean profile) and the
           -- liked entities whose neighbour lists brought the collaborative term (seed weight x
           -- neighbour weight, as a part of the term).
           (SELECT coalesce(jsonb_agg(c ORDER BY (c ->> 'contribution')::double precision DESC), '[]')
            FROM (SELECT * FROM (
                    SELECT jsonb_build_object('entity_id', e ->> 'entity_id', 'kind', e ->> 'kind', 'at', e -> 'at',
                                              'via', 'content',
                                              'contribution', (e ->> 'share')::double precision
                                                  * (1 - ((e ->> 'embedding')::@vector@.vector OPERATOR(@vector@.<=>) v.embedding))
                                                  / nullif(@vector@.vector_norm(p.embedding), 0)) AS c
                    FROM jsonb_array_elements(hist) AS e
                    UNION ALL
                    SELECT jsonb_build_object('entity_id', s.id, 'via', 'collaborative',
                                              'contribution', r.collaborative_term * s.w * n.w
                                                  / nullif(sum(s.w * n.w) OVER (), 0))
                    FROM (SELECT e ->> 'entity_id' AS id, sum((e ->> 'wd')::double precision) AS w
                          FROM jsonb_array_elements(hist) AS e GROUP BY 1) AS s
                    JOIN recvector.item_neighbors AS nb ON nb.entity_id = s.id
                    CROSS JOIN LATERAL unnest(nb.neighbor_ids, nb.weights) AS n(id, w)
                    WHERE s.w > 0 AND n.id = r.entity_id AND r.collaborative_term > 0) AS all_reasons
                  ORDER BY (c ->> 'contribution')::double precision DESC NULLS LAST
                  LIMIT explain.reasons) AS top) AS because
    FROM r JOIN recvector.entity_vectors AS v ON v.entity_id = r.entity_id
    ORDER BY r.rank;
END
$$;
COMMENT ON FUNCTION recvector.explain(text, integer, double precision, double precision, bigint, integer, double precision, double precision, double precision, integer, text, text[]) IS
  'rec_recommend''s results (same arguments) with their score parts — similarity, popularity, collaborative and exploration terms, MMR penalty — the sources that brought each candidate (content, collaborative, popular), and in "because" the user''s interactions that contributed most: via content (weight share x cosine / |profile|, which add up to the similarity to the mean profile) and via collaborative (the liked entities whose neighbours include the result, as parts of the collaborative term). Users without a profile get the popular entities, with nothing to explain.';
