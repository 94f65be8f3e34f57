-- Interactions the application does not store in its own tables: recvector.log_interaction().
-- It is app-facing (EXECUTE for recvector_app), so every argument is checked at the door: one bad
-- event must never make later computations fail for everyone.

CREATE OR REPLACE FUNCTION recvector._check_event(user_id text, entity_id text, kind text, occurred_at timestamptz,
                                                  weight double precision)
RETURNS void
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_variable
BEGIN
    IF user_id IS NULL OR entity_id IS NULL OR kind IS NULL OR occurred_at IS NULL THEN
        RAISE EXCEPTION 'recvector.log_interaction: user_id, entity_id, kind and occurred_at must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF octet_length(user_id) > 1024 OR octet_length(entity_id) > 1024 OR octet_length(kind) > 1024 THEN
        RAISE EXCEPTION 'recvector.log_interaction: ids and kind are at most 1024 bytes each'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF weight IS NULL OR weight = 'NaN'::double precision OR NOT (weight BETWEEN -100 AND 100) THEN
        RAISE EXCEPTION 'recvector.log_interaction: weight must be a number from -100 to 100, got %', weight
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Weights are capped like the mapping''s ($.events.weights): 1 is a plain positive interaction, negative values are dislikes.';
    END IF;
    IF NOT isfinite(occurred_at) OR occurred_at < '1900-01-01'::timestamptz OR occurred_at > now() + interval '1 day' THEN
        RAISE EXCEPTION 'recvector.log_interaction: occurred_at must be a real time from 1900 up to one day ahead, got %', occurred_at
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave it out to record the interaction now.';
    END IF;
END
$$;
COMMENT ON FUNCTION recvector._check_event(text, text, text, timestamptz, double precision) IS
  'Internal: refuses an event recvector.log_interaction() must not store (NULLs, ids over 1024 bytes, a weight outside [-100, 100] or NaN, a time that is infinite, before 1900 or more than a day ahead).';

CREATE OR REPLACE FUNCTION recvector.log_interaction(
    user_id text, entity_id text, kind text DEFAULT 'interaction',
    occurred_at timestamptz DEFAULT now(), weight double precision DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    m recvector.mapping := recvector._mapping();
    w double precision;
BEGIN
    w := coalesce(weight,
                  (m.document -> 'events' -> 'weights' ->> kind)::double precision,
                  (m.document -> 'events' ->> 'default_weight')::double precision,
                  1.0);
    PERFORM recvector._check_event(user_id, entity_id, kind, occurred_at, w);
    INSERT INTO recvector.events (user_id, entity_id, kind, weight, occurred_at)
    VALUES (user_id, entity_id, kind, w, occurred_at);
    IF m.document -> 'aggregation' ->> 'capture' = 'deferred' THEN
        INSERT INTO recvector.pending_interactions (user_id, entity_id, kind, weight, occurred_at)
        VALUES (user_id, entity_id, kind, w, occurred_at);
    ELSE
        PERFORM recvector._ingest(ARRAY[ROW(user_id, entity_id, kind, w, occurred_at)::recvector.interaction], m);
    END IF;
END
$$;
COMMENT ON FUNCTION recvector.log_interaction(text, text, text, timestamptz, double precision) IS
  'Records an interaction the application does not store itself (kept in recvector.events). Weight: the argument, else $.events.weights[kind], else $.events.default_weight, else 1; it must be within [-100, 100], the time finite, from 1900 and at most a day ahead, ids at most 1024 bytes. For app roles: GRANT recvector_app TO <role>.';

CREATE OR REPLACE FUNCTION recvector.log_interaction(
    user_id bigint, entity_id bigint, kind text DEFAULT 'interaction',
    occurred_at timestamptz DEFAULT now(), weight double precision DEFAULT NULL)
RETURNS void
LANGUAGE sql AS $$
    SELECT recvector.log_interaction(user_id::text, entity_id::text, kind, occurred_at, weight)
$$;
COMMENT ON FUNCTION recvector.log_interaction(bigint, bigint, text, timestamptz, double precision) IS
  'Integer-id form of recvector.log_interaction(text, text, ...).';
