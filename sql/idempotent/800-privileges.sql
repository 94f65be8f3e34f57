-- Roles and privileges (docs/security.md).
--
--   recvector_definer  NOLOGIN, no members. Owns the SECURITY DEFINER functions, so they run with
--                      only what they need: DML on RecVector's tables, EXECUTE on the internal
--                      functions they call, and SELECT on the mapped application tables (granted
--                      by set_schema). Never a superuser, whatever role installed the extension.
--   recvector_app      for application roles: rec_recommend, rec_similar, recvector.explain,
--                      recvector.log_interaction, hide, unhide.  GRANT recvector_app TO my_app;
--   recvector_worker   for the worker: recvector.process_queue, fold_pending, status.
--                                                        GRANT recvector_worker TO my_worker;
-- Everything else (configuration, bootstrap, evaluation, internals) is for the extension's owner or
-- superusers only: EXECUTE is revoked from PUBLIC on every routine.
DO $roles$
DECLARE
    r text;
    a record;
BEGIN
    FOREACH r IN ARRAY ARRAY['recvector_definer', 'recvector_app', 'recvector_worker'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created at the same moment by an install in another database
            END;
            EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS %L', r, CASE r
                WHEN 'recvector_definer' THEN 'RecVector: owns its SECURITY DEFINER functions (no login, no members).'
                WHEN 'recvector_app' THEN 'RecVector: grant to application roles (recommend, similar, explain, log interactions).'
                ELSE 'RecVector: grant to the role that runs the worker (process_queue, status).' END);
        END IF;
        SELECT * INTO a FROM pg_catalog.pg_roles WHERE rolname = r;
        IF a.rolsuper OR a.rolcanlogin OR a.rolcreaterole OR a.rolcreatedb OR a.rolreplication THEN
            RAISE EXCEPTION 'recvector: the role % exists with privileges RecVector does not give it (login, superuser, createrole, createdb or replication)', r
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'RecVector''s roles are NOLOGIN group roles with no other attribute: ALTER ROLE ... NOSUPERUSER NOLOGIN ..., or drop it and try again.';
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members AS am
               WHERE am.roleid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = 'recvector_definer')) THEN
        RAISE EXCEPTION 'recvector: the role recvector_definer has members: % ',
            (SELECT pg_catalog.string_agg(m.rolname, ', ') FROM pg_catalog.pg_auth_members AS am
             JOIN pg_catalog.pg_roles AS m ON m.oid = am.member
             WHERE am.roleid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = 'recvector_definer'))
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'No role may act as RecVector''s definer role: REVOKE recvector_definer FROM ...;';
    END IF;
    -- The definer role reads the mapped tables as the installing superuser did before 0.3.0,
    -- row-level security included.
    IF NOT (SELECT rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = 'recvector_definer') THEN
        ALTER ROLE recvector_definer BYPASSRLS;
    END IF;
END
$roles$;

REVOKE ALL ON SCHEMA recvector FROM PUBLIC;
GRANT USAGE ON SCHEMA recvector TO recvector_definer, recvector_app, recvector_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA recvector TO recvector_definer;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA recvector TO recvector_definer;

DO $privileges$
DECLARE
    fn regprocedure;
    -- SECURITY DEFINER (owned by recvector_definer) and who may call them.
    app text[] := ARRAY['rec_recommend', 'rec_similar', 'explain', 'log_interaction', 'hide', 'unhide'];
    worker text[] := ARRAY['process_queue', 'fold_pending', 'status'];
    triggers text[] := ARRAY['_capture_interactions', '_capture_entities'];
    definer oid[];
    reach oid[];
    more oid[];
BEGIN
    FOR fn IN SELECT r.fn FROM recvector._routines() AS r LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON ROUTINE %s FROM PUBLIC', fn);
    END LOOP;
    -- The definer functions: not the SQL wrappers of integer ids (they call the text forms).
    definer := ARRAY(SELECT p.oid FROM pg_catalog.pg_proc AS p JOIN recvector._routines() AS r ON r.fn = p.oid
                     WHERE p.proname = ANY (app || worker || triggers)
                       AND p.prolang <> (SELECT l.oid FROM pg_catalog.pg_language AS l WHERE l.lanname = 'sql'));
    FOR fn IN SELECT p.oid FROM pg_catalog.pg_proc AS p JOIN recvector._routines() AS r ON r.fn = p.oid
              WHERE p.proname = ANY (app || worker) LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON ROUTINE %s TO %I', fn,
                                  CASE WHEN (SELECT p.proname FROM pg_catalog.pg_proc AS p WHERE p.oid = fn) = ANY (app)
                                       THEN 'recvector_app' ELSE 'recvector_worker' END);
    END LOOP;
    -- What the definer functions call, found in their code (transitively): recvector.<name>( outside
    -- comments and string literals (hints name admin functions; those must not be reachable), plus the calls made
    -- through dynamic SQL or from Python by what they reach: the worker's re-embedding
    -- (refresh_entities, which checks the mapped columns) and the filtered ranking (_noise).
    reach := definer || ARRAY(SELECT p.oid FROM pg_catalog.pg_proc AS p WHERE p.pronamespace = 'recvector'::regnamespace
                                                                        AND p.proname IN ('refresh_entities', '_check_columns', '_noise'));
    LOOP
        more := ARRAY(SELECT DISTINCT p.oid
                      FROM pg_catalog.pg_proc AS src,
                           LATERAL pg_catalog.regexp_matches(pg_catalog.regexp_replace(pg_catalog.regexp_replace(src.prosrc, '--[^\n]*', '', 'g'),
                                                                                     '''(?:[^'']|'''')*''', '', 'g'),
                                                             '(?:recvector|@extschema@)\.("?)([a-z_0-9]+)\1\s*\(', 'g') AS mt,
                           pg_catalog.pg_proc AS p JOIN recvector._routines() AS r ON r.fn = p.oid
                      WHERE src.oid = ANY (reach) AND p.proname = mt[2] AND NOT (p.oid = ANY (reach)));
        EXIT WHEN cardinality(more) = 0;
        reach := reach || more;
    END LOOP;
    FOR fn IN SELECT unnest(reach) LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON ROUTINE %s TO recvector_definer', fn);
    END LOOP;
    FOR fn IN SELECT unnest(definer) LOOP
        EXECUTE pg_catalog.format('ALTER ROUTINE %s SECURITY DEFINER', fn);
        EXECUTE pg_catalog.format('ALTER ROUTINE %s OWNER TO recvector_definer', fn);
    END LOOP;
END
$privileges$;
