-- The per-mapping query functions, written again from the loaded mapping (an update has just
-- replaced them with their dynamic fallback).
SELECT recvector._generate_mapped();

-- Every RecVector function runs with a fixed search_path: its own schema, pgvector's, pg_catalog,
-- and pg_temp last, so that no object in a caller's search_path can stand in for one of ours.
-- Two exceptions: procedures (a SET clause forbids COMMIT inside them; their code qualifies every
-- name it uses), and the small IMMUTABLE SQL helpers, which must stay inlinable into the queries
-- that call them (a SET clause prevents inlining); they run with their caller's fixed path.
DO $finalize$
DECLARE
    vector_schema name;
    fn regprocedure;
BEGIN
    SELECT n.nspname INTO vector_schema
    FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'vector';
    FOR fn IN
        SELECT p.oid::regprocedure
        FROM pg_catalog.pg_proc p JOIN recvector._routines() AS r ON r.fn = p.oid
        WHERE p.prokind <> 'p'
          AND NOT (p.prolang = (SELECT oid FROM pg_catalog.pg_language WHERE lanname = 'sql') AND p.provolatile = 'i')
    LOOP
        EXECUTE format('ALTER ROUTINE %s SET search_path = recvector, %I, pg_catalog, pg_temp', fn, vector_schema);
    END LOOP;
END
$finalize$;
