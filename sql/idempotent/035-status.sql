-- Watching RecVector: one row on what waits for the worker.

CREATE OR REPLACE FUNCTION recvector.status()
RETURNS TABLE (version text, mapping_loaded_at timestamptz, strategy text, capture text, model text,
               entity_vectors bigint, profiles bigint, pending_interactions bigint, oldest_pending interval,
               queued_profiles bigint, queued_entities bigint, given_up bigint, failed_interactions bigint,
               auto_logging text[])
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT (SELECT e.extversion FROM pg_catalog.pg_extension AS e WHERE e.extname = 'recvector'),
           m.loaded_at,
           m.document -> 'aggregation' ->> 'strategy',
           coalesce(m.document -> 'aggregation' ->> 'capture', 'immediate'),
           m.compiled ->> 'model_id',
           (SELECT count(*) FROM recvector.entity_vectors),
           (SELECT count(*) FROM recvector.rec_user_profiles AS p WHERE p.embedding IS NOT NULL),
           (SELECT count(*) FROM recvector.pending_interactions),
           (SELECT now() - min(i.captured_at) FROM recvector.pending_interactions AS i),
           (SELECT count(*) FROM recvector.queue AS q WHERE q.kind = 'profile' AND q.attempts < 5),
           (SELECT count(*) FROM recvector.queue AS q WHERE q.kind = 'entity' AND q.attempts < 5),
           (SELECT count(*) FROM recvector.queue AS q WHERE q.attempts >= 5),
           (SELECT count(*) FROM recvector.failed_interactions),
           ARRAY(SELECT t.source || ' on ' || t.table_oid::regclass::text FROM recvector.triggers AS t ORDER BY t.source)
    FROM (SELECT 1) AS one LEFT JOIN recvector.mapping AS m ON m.id = 1;
END
$$;
COMMENT ON FUNCTION recvector.status() IS
  'One row on the state of RecVector in this database: version, mapping (loaded when, strategy, capture, model), stored vectors and profiles, what waits for the worker (deferred interactions and the age of the oldest, queued profiles and entities, items given up after 5 attempts), interactions kept after a recording failure, and the auto-logging triggers. For monitoring: a growing oldest_pending or queue means the worker is not keeping up.';

