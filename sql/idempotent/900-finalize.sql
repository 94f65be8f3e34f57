-- The loaded mapping compiled again by this version (its checks and SQL apply at once; the definer
-- role gets SELECT on the mapped tables), and the per-mapping query functions written again from it
-- (an update has just replaced them with their dynamic fallback). Without PL/Python (the plain-SQL
-- install) only the latter; the CLI compiles.
DO $recompile$
BEGIN
    IF pg_catalog.to_regprocedure('recvector._recompile()') IS NOT NULL
       AND EXISTS (SELECT 1 FROM recvector.mapping) THEN
        PERFORM recvector._recompile();
    ELSE
        PERFORM recvector._generate_mapped();
    END IF;
END
$recompile$;

-- Every RecVector function runs with search_path = pg_catalog, recvector, pg_temp: built-in
-- objects first, then RecVector's own schema (which only its owner can create in), temporary
-- objects last; no schema other roles can create objects in (pgvector's objects are named with
-- their schema in the code). Two exceptions: procedures (a SET clause forbids COMMIT inside them;
-- their code qualifies every name and sets the path itself), and the small IMMUTABLE SQL helpers,
-- which must stay inlinable into the queries that call them (a SET clause prevents inlining) and
-- qualify every name; they run with their caller's path.
DO $finalize$
DECLARE
    fn regprocedure;
BEGIN
    FOR fn IN
        SELECT p.oid::regprocedure
        FROM pg_catalog.pg_proc p JOIN recvector._routines() AS r ON r.fn = p.oid
        WHERE p.prokind <> 'p'
          AND NOT (p.prolang = (SELECT oid FROM pg_catalog.pg_language WHERE lanname = 'sql') AND p.provolatile = 'i')
    LOOP
        EXECUTE pg_catalog.format('ALTER ROUTINE %s SET search_path = pg_catalog, recvector, pg_temp', fn);
    END LOOP;
END
$finalize$;
