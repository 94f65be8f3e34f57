-- Small helpers used by the serving path. Pure SQL, no PL/Python.

-- Every routine RecVector defines: those in its schema and the rec_* functions in the schema it
-- was installed into (the same set as an extension install's members).
CREATE OR REPLACE FUNCTION recvector._routines()
RETURNS TABLE (fn regprocedure)
LANGUAGE sql STABLE AS $$
    SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = 'recvector'::regnamespace
       OR (p.pronamespace = '@extschema@'::regnamespace AND p.proname IN ('rec_recommend', 'rec_similar'))
$$;
COMMENT ON FUNCTION recvector._routines() IS 'Internal: every routine RecVector defines (for privileges and search paths).';

CREATE OR REPLACE FUNCTION recvector._mapping()
RETURNS recvector.mapping
LANGUAGE plpgsql STABLE AS $$
DECLARE
    m recvector.mapping;
BEGIN
    SELECT * INTO m FROM recvector.mapping WHERE id = 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'RecVector has no mapping loaded'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Load one with: SELECT recvector.set_schema(''<mapping json>''::jsonb);';
    END IF;
    RETURN m;
END
$$;
COMMENT ON FUNCTION recvector._mapping() IS 'Internal: the loaded mapping row, or an ERROR telling how to load one.';

-- 0.5 ^ (seconds between t_from and t_to / half-life); contributions older than ~100 half-lives
-- count as 0 so that no float underflow can occur downstream.
CREATE OR REPLACE FUNCTION recvector._decay(t_from timestamptz, t_to timestamptz, half_life_seconds double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN t_from IS NULL OR t_to IS NULL THEN 0::double precision
        WHEN extract(epoch FROM (t_to - t_from)) <= 0 THEN 1::double precision
        WHEN extract(epoch FROM (t_to - t_from)) / half_life_seconds > 100 THEN 0::double precision
        ELSE pg_catalog.power(0.5::double precision, extract(epoch FROM (t_to - t_from))::double precision / half_life_seconds)
    END
$$;
COMMENT ON FUNCTION recvector._decay(timestamptz, timestamptz, double precision) IS
  'Internal: time-decay factor 0.5^((t_to - t_from)/half_life); 1 when t_from is not older; 0 past 100 half-lives or when a time is missing.';

-- v * s. Factors below 1e-9 in magnitude count as 0 (their contribution is negligible and they
-- could underflow float4). NULL in, NULL out, without STRICT: a STRICT SQL function whose body is a
-- CASE is not inlined, and inlining saves a function call per vector on the write path.
CREATE OR REPLACE FUNCTION recvector._scale(v vector, s double precision)
RETURNS vector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN v IS NULL OR pg_catalog.abs(s) < 1e-9 THEN NULL
                ELSE v OPERATOR(@vector@.*) pg_catalog.array_fill(s::real, ARRAY[@vector@.vector_dims(v)])::@vector@.vector END
$$;
COMMENT ON FUNCTION recvector._scale(vector, double precision) IS
  'Internal: vector times scalar (NULL when the vector is NULL or |s| < 1e-9, so it drops out of sums).';

-- Merge two {"kind": count} objects by adding counts.
CREATE OR REPLACE FUNCTION recvector._add_counts(a jsonb, b jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(pg_catalog.jsonb_object_agg(key, total ORDER BY key), '{}'::jsonb)
    FROM (SELECT key, pg_catalog.sum(value::numeric) AS total
          FROM (SELECT * FROM pg_catalog.jsonb_each_text(coalesce(a, '{}'::jsonb))
                UNION ALL
                SELECT * FROM pg_catalog.jsonb_each_text(coalesce(b, '{}'::jsonb))) AS kv
          GROUP BY key) AS s
$$;
COMMENT ON FUNCTION recvector._add_counts(jsonb, jsonb) IS 'Internal: adds two {"kind": count} objects key by key.';

-- A deterministic number in [0, 1) from a seed and an id (exploration without touching setseed()).
CREATE OR REPLACE FUNCTION recvector._noise(seed bigint, id text)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN seed IS NULL THEN pg_catalog.random()
                ELSE ('x' || pg_catalog.substr(pg_catalog.md5(seed::text || ':' || id), 1, 8))::bit(32)::bigint / 4294967296.0 END
$$;
COMMENT ON FUNCTION recvector._noise(bigint, text) IS
  'Internal: exploration noise in [0,1): a hash of (seed, id) when a seed is given, random() otherwise.';

-- The id if it can be cast to the user id column's type, else NULL: a user id that cannot exist in
-- the app's table (e.g. 'abc' for an integer key) simply has no history there. Fast paths for
-- integer and text keys; other types try the cast (one subtransaction).
CREATE OR REPLACE FUNCTION recvector._id_or_null(id text, type_name text)
RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF id IS NULL THEN
        RETURN NULL;
    ELSIF type_name IN ('text', 'character varying', 'name') OR type_name LIKE 'character varying(%' THEN
        RETURN id;
    ELSIF type_name IN ('smallint', 'integer', 'bigint') THEN
        IF id !~ '^\s*[-+]?[0-9]{1,19}\s*$' THEN
            RETURN NULL;
        END IF;
        IF id::numeric NOT BETWEEN (CASE type_name WHEN 'smallint' THEN -32768 WHEN 'integer' THEN -2147483648
                                                   ELSE -9223372036854775808 END)
                               AND (CASE type_name WHEN 'smallint' THEN 32767 WHEN 'integer' THEN 2147483647
                                                   ELSE 9223372036854775807 END) THEN
            RETURN NULL;
        END IF;
        RETURN id;
    END IF;
    BEGIN
        EXECUTE format('SELECT CAST($1 AS %s)', type_name) USING id;
        RETURN id;
    EXCEPTION WHEN data_exception THEN
        RETURN NULL;
    END;
END
$$;
COMMENT ON FUNCTION recvector._id_or_null(text, text) IS
  'Internal: the id when it is a valid value of the given type (the user id column''s), NULL otherwise.';

