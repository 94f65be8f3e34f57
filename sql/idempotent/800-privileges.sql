-- Role model (docs/reliability.md):
--   * the schema is visible to every role, its tables to none but the owner;
--   * serving functions (rec_recommend, rec_similar, recvector.log_interaction) and the trigger
--     run as the extension owner (SECURITY DEFINER, fixed search_path) and are executable by PUBLIC,
--     so an app role needs no privilege on RecVector's tables;
--   * everything that changes configuration or does maintenance is revoked from PUBLIC: grant it
--     to an admin or worker role explicitly.
GRANT USAGE ON SCHEMA recvector TO PUBLIC;

DO $privileges$
DECLARE
    fn regprocedure;
    definer text[] := ARRAY['rec_recommend', 'rec_similar', 'log_interaction', '_capture_interactions'];
BEGIN
    FOR fn IN SELECT r.fn FROM recvector._routines() AS r LOOP
        IF (SELECT proname FROM pg_catalog.pg_proc WHERE oid = fn) = ANY (definer)
           AND (SELECT prolang FROM pg_catalog.pg_proc WHERE oid = fn) <> (SELECT oid FROM pg_catalog.pg_language WHERE lanname = 'sql') THEN
            EXECUTE format('ALTER ROUTINE %s SECURITY DEFINER', fn);
        ELSIF (SELECT proname FROM pg_catalog.pg_proc WHERE oid = fn) <> ALL (definer) THEN
            EXECUTE format('REVOKE EXECUTE ON ROUTINE %s FROM PUBLIC', fn);
        END IF;
    END LOOP;
END
$privileges$;
