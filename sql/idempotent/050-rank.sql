-- Ranking: SQL and PL/pgSQL only (works where pgvector is allowed and PL/Python is not).
--
-- Candidates come from three sources, de-duplicated, seen and excluded entities removed:
--   content        one HNSW query per interest of the user (pool shared by interest weight);
--   collaborative  the user's collaborative candidates, computed with the profile from the
--                  neighbours of their positive entities (cf(i) = sum_j weight_j x decay_j x w_ji,
--                  recvector._profile_of), the strongest cf_pool of them;
--   popular        the popular_pool most popular entities.
-- Every candidate is then scored by one formula, each term on a 0..1 scale so that the weights mean
-- what they say:
--   relevance = alpha * similarity                        cosine to the nearest interest (-1..1)
--             + beta  * ln(1 + popularity) / ln(1 + max popularity)
--             + gamma * cf / max cf over the candidates
--             + exploration * noise                        noise in [0, 1)
-- and MMR re-ranks the mmr_window best by relevance: repeatedly take the one maximising
-- lambda * relevance - (1 - lambda) * max cosine to those already taken.

-- The popularity term's scale: ln(1 + the largest popularity), from the popularity index.
CREATE OR REPLACE FUNCTION recvector._log_max_popularity()
RETURNS double precision
LANGUAGE sql STABLE AS $$
    SELECT ln(1 + s.popularity) FROM recvector.rec_entity_stats AS s ORDER BY s.popularity DESC LIMIT 1
$$;
COMMENT ON FUNCTION recvector._log_max_popularity() IS
  'Internal: ln(1 + the largest popularity), the denominator of the popularity term (rec_recommend, its cold start, explain).';

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

-- The one place scoring settings are resolved and checked: built-in defaults, then the mapping's
-- scoring section, then the caller's non-NULL arguments (overrides).
CREATE OR REPLACE FUNCTION recvector._scoring(overrides jsonb DEFAULT '{}', k integer DEFAULT 10)
RETURNS recvector.scoring
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s jsonb := jsonb_build_object('alpha', 0.5, 'beta', 0.1, 'gamma', 1.0, 'lambda', 0.9, 'exploration', 0.0,
                                  'candidate_pool', 100, 'cf_pool', 200, 'popular_pool', 50, 'ef_search', 100,
                                  'mmr_window', 0)
               || coalesce((SELECT m.document -> 'scoring' FROM recvector.mapping AS m WHERE m.id = 1), '{}')
               || jsonb_strip_nulls(coalesce(overrides, '{}'));
    r recvector.scoring;
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['alpha', 'beta', 'gamma', 'lambda', 'exploration'] LOOP
        IF jsonb_typeof(s -> name) <> 'number' OR (s ->> name)::double precision IN ('NaN', 'Infinity', '-Infinity') THEN
            RAISE EXCEPTION '% must be a finite number, got %', name, s -> name USING ERRCODE = 'invalid_parameter_value',
                HINT = 'Weights are numbers of 0 or more; lambda and exploration are between 0 and 1.';
        END IF;
    END LOOP;
    r := jsonb_populate_record(NULL::recvector.scoring, s);
    IF NOT (r.lambda BETWEEN 0 AND 1) THEN
        RAISE EXCEPTION 'lambda must be between 0 and 1, got %', r.lambda USING ERRCODE = 'invalid_parameter_value',
            HINT = '1 ranks by relevance only; lower values trade relevance for diversity (MMR).';
    END IF;
    IF NOT (r.exploration BETWEEN 0 AND 1) THEN
        RAISE EXCEPTION 'exploration must be between 0 and 1, got %', r.exploration USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF r.alpha < 0 OR r.beta < 0 OR r.gamma < 0 THEN
        RAISE EXCEPTION 'alpha, beta and gamma must not be negative, got %, % and %', r.alpha, r.beta, r.gamma
            USING ERRCODE = 'invalid_parameter_value', HINT = 'A weight of 0 turns its term off.';
    END IF;
    IF r.candidate_pool IS NULL OR r.candidate_pool NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'candidate_pool must be between 1 and 10000, got %', r.candidate_pool USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF r.cf_pool NOT BETWEEN 0 AND 10000 OR r.popular_pool NOT BETWEEN 0 AND 10000 THEN
        RAISE EXCEPTION 'cf_pool and popular_pool must be between 0 and 10000, got % and %', r.cf_pool, r.popular_pool
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF r.ef_search NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'ef_search must be between 1 and 1000, got %', r.ef_search USING ERRCODE = 'invalid_parameter_value';
    END IF;
    r.candidate_pool := greatest(r.candidate_pool, k);
    r.mmr_window := CASE WHEN r.mmr_window > 0 THEN greatest(r.mmr_window, k) ELSE greatest(3 * k, 30) END;
    RETURN r;
END
$$;
COMMENT ON FUNCTION recvector._scoring(jsonb, integer) IS
  'Internal: the scoring settings of one call: built-in defaults, then the mapping''s scoring section, then the non-NULL overrides; every value checked (ranges, finite), pools at least k. Used by rec_recommend, explain and evaluate.';

-- The candidate query, written once: {restrict_*} are empty or "AND x IN (<compiled filter>)";
-- {stats} the popularity relation (RecVector's, or the evaluation's).
-- $1 interests, $2 per-interest pool, $3 excluded ids, $4 collaborative candidates, $5 their
-- scores, $6 cf_pool, $7 popular_pool, $8 alpha, $9 beta, $10 gamma, $11 exploration, $12 seed,
-- $13 rows wanted, $14 ln(1 + max popularity).
CREATE OR REPLACE FUNCTION recvector._candidate_sql(restrict_sql text, stats text)
RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace($t$
WITH content AS (
    SELECT c.entity_id
    FROM unnest($1::@vector@.vector[], $2::integer[]) AS it(q, lim)
    CROSS JOIN LATERAL (
        SELECT v.entity_id FROM recvector.entity_vectors AS v
        WHERE NOT (v.entity_id = ANY ($3)) {restrict_v}
        ORDER BY v.embedding OPERATOR(@vector@.<=>) it.q
        LIMIT it.lim) AS c),
cf AS (
    SELECT c.id AS entity_id, c.s::double precision AS cf
    FROM unnest($4::text[], $5::real[]) AS c(id, s)
    WHERE NOT (c.id = ANY ($3))),
cf_top AS (
    SELECT cf.entity_id FROM cf WHERE cf.cf > 0 {restrict_cf} ORDER BY cf.cf DESC, cf.entity_id LIMIT $6),
popular AS (
    SELECT st.entity_id FROM {stats} AS st
    WHERE st.popularity > 0 AND NOT (st.entity_id = ANY ($3)) {restrict_st}
    ORDER BY st.popularity DESC, st.entity_id LIMIT $7),
cand AS (
    SELECT x.entity_id, bit_or(x.src) AS src
    FROM (SELECT entity_id, 1 FROM content UNION ALL SELECT entity_id, 2 FROM cf_top
          UNION ALL SELECT entity_id, 4 FROM popular) AS x(entity_id, src)
    GROUP BY x.entity_id),
parts AS (
    SELECT c.entity_id, c.src,
           coalesce((SELECT max(1 - (v.embedding OPERATOR(@vector@.<=>) q)) FROM unnest($1::@vector@.vector[]) AS q), 0)
               AS sim,
           CASE WHEN $14 > 0 THEN ln(1 + coalesce(st.popularity, 0)) / $14 ELSE 0 END AS pop,
           coalesce(f.cf, 0) AS cf
    FROM cand AS c
    JOIN recvector.entity_vectors AS v ON v.entity_id = c.entity_id
    LEFT JOIN cf AS f ON f.entity_id = c.entity_id
    LEFT JOIN {stats} AS st ON st.entity_id = c.entity_id),
terms AS (
    SELECT p.entity_id, p.src, p.sim, $9 * p.pop AS pop_term,
           $10 * coalesce(p.cf / nullif(max(p.cf) OVER (), 0), 0) AS cf_term,
           CASE WHEN $11 > 0 THEN $11 * recvector._noise($12, p.entity_id) ELSE 0 END AS expl
    FROM parts AS p)
SELECT t.entity_id, $8 * t.sim + t.pop_term + t.cf_term + t.expl AS relevance, t.sim, t.pop_term, t.cf_term, t.expl,
       concat_ws(',', CASE WHEN t.src & 1 > 0 THEN 'content' END, CASE WHEN t.src & 2 > 0 THEN 'collaborative' END,
                      CASE WHEN t.src & 4 > 0 THEN 'popular' END) AS sources
FROM terms AS t
ORDER BY 2 DESC, t.entity_id
LIMIT $13
$t$, '{restrict_v}', CASE WHEN restrict_sql IS NULL THEN '' ELSE 'AND v.entity_id IN (' || restrict_sql || ')' END),
     '{restrict_cf}', CASE WHEN restrict_sql IS NULL THEN '' ELSE 'AND cf.entity_id IN (' || restrict_sql || ')' END),
     '{restrict_st}', CASE WHEN restrict_sql IS NULL THEN '' ELSE 'AND st.entity_id IN (' || restrict_sql || ')' END),
     '{stats}', stats)
$$;
COMMENT ON FUNCTION recvector._candidate_sql(text, text) IS
  'Internal: the hybrid candidate and scoring query (content per interest, collaborative candidates, popular), with a compiled filter and the popularity relation put in; parameters $1-$14 as documented in 050-rank.sql.';

-- The candidate query over RecVector's own tables without a filter, as static SQL (planned once
-- per session): written from _candidate_sql when the extension is installed or updated.
DO $candidates$
BEGIN
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION recvector._candidates(
            @vector@.vector[], integer[], text[], text[], real[], integer, integer, double precision, double precision,
            double precision, double precision, bigint, integer, double precision)
        RETURNS TABLE (entity_id text, relevance double precision, similarity double precision,
                       popularity_term double precision, collaborative_term double precision,
                       exploration_term double precision, sources text)
        LANGUAGE plpgsql STABLE AS %L $f$,
        E'#variable_conflict use_column\nBEGIN\n    RETURN QUERY '
        || recvector._candidate_sql(NULL, 'recvector.rec_entity_stats')
        || E';\nEND');
END
$candidates$;
COMMENT ON FUNCTION recvector._candidates(@vector@.vector[], integer[], text[], text[], real[], integer, integer, double precision, double precision, double precision, double precision, bigint, integer, double precision) IS
  'Internal: recvector._candidate_sql over RecVector''s own popularity table, without a filter, as static SQL (generated when the extension is installed or updated).';

-- The ranking for any user state: rec_recommend passes the stored profile; recvector.evaluate and
-- recvector.tune pass profiles and popularity built from the training part of a history.
CREATE OR REPLACE FUNCTION recvector._rank(
    interests @vector@.vector[], interest_weights real[], cf_candidates text[], cf_scores real[], seen text[],
    k integer, sc recvector.scoring, seed bigint DEFAULT NULL, restrict_sql text DEFAULT NULL,
    stats text DEFAULT NULL)
RETURNS TABLE (entity_id text, score double precision, similarity double precision, popularity_term double precision,
               collaborative_term double precision, exploration_term double precision, mmr_penalty double precision,
               sources text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    lims integer[];
    wanted integer;
    max_pop double precision;
    ids text[];
    rel double precision[];
    sims double precision[];
    pops double precision[];
    cfs double precision[];
    expl double precision[];
    srcs text[];
    pair double precision[];
    maxsim double precision[];
    taken boolean[];
    n integer;
    best integer;
    best_val double precision;
    val double precision;
    old_ef text := current_setting('hnsw.ef_search', true);
    old_iter text := current_setting('hnsw.iterative_scan', true);
BEGIN
    -- Each interest's share of the content pool (at least 10 each, or the whole pool if smaller, so a
    -- minor taste is still searched).
    lims := ARRAY(SELECT greatest(ceil(sc.candidate_pool * coalesce(w.x, 1.0 / cardinality(interests))),
                                  least(10, sc.candidate_pool))::integer
                  FROM unnest(interests) WITH ORDINALITY AS i(v, o)
                  LEFT JOIN unnest(interest_weights) WITH ORDINALITY AS w(x, o) ON w.o = i.o ORDER BY i.o);
    wanted := CASE WHEN sc.lambda >= 1 THEN k ELSE sc.mmr_window END;
    IF stats IS NULL THEN
        max_pop := recvector._log_max_popularity();
    ELSE
        EXECUTE format('SELECT ln(1 + max(s.popularity)) FROM %s AS s', stats) INTO max_pop;
    END IF;
    -- The iterative scan keeps each interest's pool full despite the seen filter.
    PERFORM set_config('hnsw.ef_search',
                       least(greatest((SELECT max(x) FROM unnest(lims) AS x), sc.ef_search, 40), 1000)::text, true);
    PERFORM set_config('hnsw.iterative_scan', 'relaxed_order', true);
    IF restrict_sql IS NULL AND stats IS NULL THEN
        SELECT array_agg(c.entity_id), array_agg(c.relevance), array_agg(c.similarity), array_agg(c.popularity_term),
               array_agg(c.collaborative_term), array_agg(c.exploration_term), array_agg(c.sources)
        INTO ids, rel, sims, pops, cfs, expl, srcs
        FROM recvector._candidates(coalesce(interests, '{}'), coalesce(lims, '{}'), coalesce(seen, '{}'),
                                   coalesce(cf_candidates, '{}'), coalesce(cf_scores, '{}'),
                                   CASE WHEN sc.gamma > 0 THEN sc.cf_pool ELSE 0 END, sc.popular_pool,
                                   sc.alpha, sc.beta, sc.gamma, sc.exploration, seed, wanted, coalesce(max_pop, 0)) AS c;
    ELSE
        EXECUTE 'SELECT array_agg(c.entity_id), array_agg(c.relevance), array_agg(c.sim), array_agg(c.pop_term),
                        array_agg(c.cf_term), array_agg(c.expl), array_agg(c.sources)
                 FROM (' || recvector._candidate_sql(restrict_sql, coalesce(stats, 'recvector.rec_entity_stats')) || ') AS c'
        INTO ids, rel, sims, pops, cfs, expl, srcs
        USING coalesce(interests, '{}'), coalesce(lims, '{}'), coalesce(seen, '{}'), coalesce(cf_candidates, '{}'),
              coalesce(cf_scores, '{}'), CASE WHEN sc.gamma > 0 THEN sc.cf_pool ELSE 0 END, sc.popular_pool,
              sc.alpha, sc.beta, sc.gamma, sc.exploration, seed, wanted, coalesce(max_pop, 0);
    END IF;
    PERFORM set_config('hnsw.ef_search', coalesce(old_ef, '40'), true);
    PERFORM set_config('hnsw.iterative_scan', coalesce(old_iter, 'off'), true);
    n := coalesce(cardinality(ids), 0);
    IF n = 0 THEN
        RETURN;
    END IF;
    IF sc.lambda >= 1 OR n = 1 THEN
        FOR i IN 1 .. least(k, n) LOOP
            entity_id := ids[i]; score := rel[i]; similarity := sims[i]; popularity_term := pops[i];
            collaborative_term := cfs[i]; exploration_term := expl[i]; mmr_penalty := 0; sources := srcs[i];
            RETURN NEXT;
        END LOOP;
        RETURN;
    END IF;

    -- MMR over the window: the pairwise cosines of the window's vectors in one statement, then the
    -- greedy choice over arrays (no statement per step).
    SELECT array_agg(1 - (a.embedding OPERATOR(@vector@.<=>) b.embedding) ORDER BY a.o, b.o) INTO pair
    FROM (SELECT u.o, v.embedding FROM unnest(ids) WITH ORDINALITY AS u(id, o)
          JOIN recvector.entity_vectors AS v ON v.entity_id = u.id) AS a
    CROSS JOIN (SELECT u.o, v.embedding FROM unnest(ids) WITH ORDINALITY AS u(id, o)
                JOIN recvector.entity_vectors AS v ON v.entity_id = u.id) AS b;
    taken := array_fill(false, ARRAY[n]);
    maxsim := array_fill(NULL::double precision, ARRAY[n]);
    best := 1;  -- the most relevant first (rows are in relevance order)
    FOR step IN 1 .. least(k, n) LOOP
        taken[best] := true;
        entity_id := ids[best]; score := rel[best]; similarity := sims[best]; popularity_term := pops[best];
        collaborative_term := cfs[best]; exploration_term := expl[best];
        mmr_penalty := (1 - sc.lambda) * coalesce(maxsim[best], 0); sources := srcs[best];
        RETURN NEXT;
        EXIT WHEN step = least(k, n);
        FOR i IN 1 .. n LOOP
            maxsim[i] := greatest(maxsim[i], pair[(best - 1) * n + i]);
        END LOOP;
        best := NULL;
        best_val := NULL;
        FOR i IN 1 .. n LOOP
            CONTINUE WHEN taken[i];
            val := sc.lambda * rel[i] - (1 - sc.lambda) * coalesce(maxsim[i], 0);
            IF best_val IS NULL OR val > best_val THEN
                best := i;
                best_val := val;
            END IF;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION recvector._rank(@vector@.vector[], real[], text[], real[], text[], integer, recvector.scoring, bigint, text, text) IS
  'Internal: hybrid candidates (content per interest, the profile''s collaborative candidates, popular) minus seen, scored alpha*similarity + beta*popularity + gamma*collaborative (+ exploration*noise), MMR with lambda over the mmr_window best; restrict_sql a compiled filter; stats another popularity relation (evaluation). Returns each result''s score parts and the sources that brought it.';
