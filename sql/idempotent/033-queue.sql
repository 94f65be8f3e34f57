-- The worker: recvector.process_queue() (pg_cron or `recvector worker`) does, in this order,
--   1. entities queued by entity sync: re-embedded together (network: before any lock an
--      application could wait on);
--   2. deferred captures: folded (recvector.fold_pending);
--   3. interactions a trigger could not record, when due: recorded again;
--   4. profile recomputes: queued users that are due, users past aggregation.time_fallback, and
--      users whose collaborative candidates predate the last neighbour build;
--   5. neighbours: every neighbors.rebuild_every, a new build, one step (a chunk) per round.
-- It never waits for a lock the application holds (rows are taken NOWAIT or SKIP LOCKED; the one
-- unavoidable wait, on a key another transaction is inserting, gives up after 100 ms), so it can
-- never deadlock with the application: what it cannot take now it takes on a later round. Failed
-- items are retried with exponential backoff (recvector._backoff), never dropped.

-- 10 s x 2^(attempts - 1), at most an hour, with +-25 % jitter so that many failed items do not all
-- come back in the same second.
CREATE OR REPLACE FUNCTION recvector._backoff(attempts integer)
RETURNS interval
LANGUAGE sql VOLATILE AS $$
    SELECT pg_catalog.make_interval(secs => least(10 * power(2::double precision, greatest(attempts, 1) - 1), 3600)
                                              * (0.75 + 0.5 * pg_catalog.random()))
$$;
COMMENT ON FUNCTION recvector._backoff(integer) IS
  'Internal: wait before the next attempt of a failed queue item or interaction batch: 10 s doubling per attempt, at most 1 hour, +-25 % jitter.';

-- Queue an item without waiting more than 100 ms for a concurrent insert of the same key (whose
-- transaction is queuing it anyway).
CREATE OR REPLACE FUNCTION recvector._queue_quietly(item_kind text, item_key text, error text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    old_timeout text := current_setting('lock_timeout');
BEGIN
    PERFORM pg_catalog.set_config('lock_timeout', '100ms', true);
    BEGIN
        INSERT INTO recvector.queue AS q (kind, key, last_error) VALUES (item_kind, item_key, error)
        ON CONFLICT (kind, key) DO UPDATE SET last_error = coalesce(excluded.last_error, q.last_error);
    EXCEPTION WHEN lock_not_available THEN
        NULL;
    END;
    PERFORM pg_catalog.set_config('lock_timeout', old_timeout, true);
END
$$;
COMMENT ON FUNCTION recvector._queue_quietly(text, text, text) IS
  'Internal: queues an item (kind, key) for the worker, giving up after 100 ms if another transaction is inserting the same item.';

CREATE OR REPLACE FUNCTION recvector.fold_pending(max_rows integer DEFAULT 10000)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    cand tid[];
    users text[];
    entities text[];
    busy_users text[];
    busy_entities text[];
    evs recvector.interaction[];
BEGIN
    IF max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION 'max_rows must be a positive integer, got %', max_rows USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Up to max_rows pending rows no other worker holds; rows are only ever inserted and deleted,
    -- so a locked row's ctid is stable.
    SELECT array_agg(p.ctid), array_agg(DISTINCT p.user_id), array_agg(DISTINCT p.entity_id)
    INTO cand, users, entities
    FROM (SELECT pi.ctid, pi.user_id, pi.entity_id FROM recvector.pending_interactions AS pi
          LIMIT max_rows FOR UPDATE OF pi SKIP LOCKED) AS p;
    IF cand IS NULL THEN
        RETURN 0;
    END IF;
    -- Lock the profile and stat rows they touch without waiting (documented order); rows whose user
    -- or entity another transaction holds stay pending for the next call.
    busy_users := ARRAY(SELECT p.user_id FROM recvector.rec_user_profiles AS p WHERE p.user_id = ANY (users)
                        EXCEPT
                        SELECT l.user_id FROM (SELECT p2.user_id FROM recvector.rec_user_profiles AS p2
                                               WHERE p2.user_id = ANY (users) ORDER BY p2.user_id
                                               FOR UPDATE SKIP LOCKED) AS l);
    busy_entities := ARRAY(SELECT s.entity_id FROM recvector.rec_entity_stats AS s WHERE s.entity_id = ANY (entities)
                           EXCEPT
                           SELECT l.entity_id FROM (SELECT s2.entity_id FROM recvector.rec_entity_stats AS s2
                                                    WHERE s2.entity_id = ANY (entities) ORDER BY s2.entity_id
                                                    FOR UPDATE SKIP LOCKED) AS l);
    WITH taken AS (
        DELETE FROM recvector.pending_interactions AS pi
        WHERE pi.ctid = ANY (cand) AND NOT (pi.user_id = ANY (busy_users)) AND NOT (pi.entity_id = ANY (busy_entities))
        RETURNING pi.user_id, pi.entity_id, pi.kind, pi.weight, pi.occurred_at)
    SELECT array_agg(ROW(t.user_id, t.entity_id, t.kind, t.weight, t.occurred_at)::recvector.interaction)
    INTO evs FROM taken AS t;
    IF evs IS NULL THEN
        RETURN 0;
    END IF;
    -- If recording fails, the deletion rolls back with it and the rows stay for the next call.
    RETURN recvector._ingest(evs, NULL, nowait => true);
END
$$;
COMMENT ON FUNCTION recvector.fold_pending(integer) IS
  'Folds up to max_rows interactions captured with aggregation.capture = deferred (recvector.pending_interactions) into the user counters, entity stats and profiles, exactly as an immediate capture would have. It never waits: rows another worker holds, and rows whose user or entity another transaction is writing, stay pending for the next call. Run by recvector.process_queue(). Returns the number folded.';

CREATE OR REPLACE FUNCTION recvector.process_queue(max_items integer DEFAULT 100)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m recvector.mapping := recvector._mapping();
    fallback double precision := (m.compiled -> 'aggregation' ->> 'time_fallback_seconds')::double precision;
    old_timeout text := current_setting('lock_timeout');
    done integer := 0;
    entity_ids bigint[];
    entity_keys text[];
    due text[];
    mine text[];
    stale_before timestamptz := coalesce((SELECT b.finished_at FROM recvector.neighbor_builds AS b WHERE b.id = 1),
                                         '-infinity');
    u text;
BEGIN
    IF max_items IS NULL OR max_items < 1 THEN
        RAISE EXCEPTION 'max_items must be a positive integer, got %', max_items USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM recvector._check_columns(m.compiled -> 'columns');
    PERFORM pg_catalog.set_config('lock_timeout', '100ms', true);

    -- 1. Queued entities (recvector.enable_entity_sync), due now, re-embedded together in one call.
    IF to_regprocedure('recvector.refresh_entities(text[])') IS NOT NULL THEN
        SELECT array_agg(q.id), array_agg(q.key) INTO entity_ids, entity_keys
        FROM (SELECT q.id, q.key FROM recvector.queue AS q WHERE q.kind = 'entity' AND q.next_attempt_at <= now()
              ORDER BY q.id LIMIT max_items FOR UPDATE SKIP LOCKED) AS q;
    END IF;
    -- (Without PL/Python, in a plain-SQL install, `recvector worker` embeds them outside the database.)
    IF entity_ids IS NOT NULL THEN
        BEGIN
            EXECUTE 'SELECT recvector.refresh_entities($1)' USING entity_keys;
            DELETE FROM recvector.queue WHERE id = ANY (entity_ids);
            done := done + cardinality(entity_ids);
            -- The provider works again: items that failed before come back now, not at their backoff time.
            UPDATE recvector.queue SET next_attempt_at = now()
            WHERE id IN (SELECT q.id FROM recvector.queue AS q
                         WHERE q.kind = 'entity' AND q.attempts > 0 AND q.next_attempt_at > now()
                         FOR UPDATE SKIP LOCKED);
        EXCEPTION WHEN OTHERS THEN
            UPDATE recvector.queue SET attempts = attempts + 1, last_error = SQLERRM,
                                       next_attempt_at = now() + recvector._backoff(attempts + 1)
            WHERE id = ANY (entity_ids);
            RAISE WARNING 'recvector: re-embedding % queued entities failed: %', cardinality(entity_ids), SQLERRM
                USING HINT = 'They are tried again with backoff (recvector.status() shows them); nothing is dropped.';
        END;
    END IF;

    -- 2. Deferred captures, so that the recomputes below see their counters.
    IF EXISTS (SELECT 1 FROM recvector.pending_interactions) THEN
        BEGIN
            done := done + recvector.fold_pending(least(max_items::bigint * 100, 2147483647)::integer);
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            NULL;  -- a key being inserted by someone else: the next round folds these rows
        WHEN OTHERS THEN
            RAISE WARNING 'recvector: folding deferred interactions failed: %', SQLERRM
                USING HINT = 'They stay in recvector.pending_interactions; SELECT recvector.fold_pending() shows the error.';
        END;
    END IF;

    -- 3. Interactions a trigger could not record, when due.
    IF EXISTS (SELECT 1 FROM recvector.failed_interactions AS f WHERE f.next_attempt_at <= now()) THEN
        done := done + recvector._retry_failed(max_items, true);
    END IF;

    -- 4. Profile recomputes: queued users that are due, then users with interactions older than the
    --    time fallback; only those whose profile row no one else holds (SKIP LOCKED), in user order.
    due := ARRAY(SELECT q.key FROM recvector.queue AS q WHERE q.kind = 'profile' AND q.next_attempt_at <= now()
                 ORDER BY q.id LIMIT max_items);
    IF cardinality(due) < max_items THEN
        -- (and users whose collaborative candidates predate the last neighbour build)
        due := due || ARRAY(SELECT p.user_id FROM recvector.rec_user_profiles AS p
                            WHERE ((p.interaction_count_since_update > 0
                                    AND p.last_updated < now() - make_interval(secs => fallback))
                                   OR (p.embedding IS NOT NULL AND p.last_updated < stale_before))
                              AND NOT (p.user_id = ANY (due))
                            ORDER BY p.last_updated LIMIT max_items - cardinality(due));
    END IF;
    IF cardinality(due) > 0 THEN
        mine := ARRAY(SELECT p.user_id FROM recvector.rec_user_profiles AS p WHERE p.user_id = ANY (due)
                      ORDER BY p.user_id FOR UPDATE SKIP LOCKED)
                -- queued users without a profile row: nothing to lock, the recompute inserts it
                || ARRAY(SELECT d FROM unnest(due) AS d
                         WHERE NOT EXISTS (SELECT 1 FROM recvector.rec_user_profiles AS p WHERE p.user_id = d));
        FOREACH u IN ARRAY mine LOOP
            BEGIN
                PERFORM recvector.update_user_profile(u);
                DELETE FROM recvector.queue AS q WHERE q.kind = 'profile' AND q.key = u;
                done := done + 1;
            EXCEPTION WHEN OTHERS THEN
                INSERT INTO recvector.queue AS q (kind, key, attempts, last_error, next_attempt_at)
                VALUES ('profile', u, 1, SQLERRM, now() + recvector._backoff(1))
                ON CONFLICT (kind, key) DO UPDATE
                    SET attempts = q.attempts + 1, last_error = excluded.last_error,
                        next_attempt_at = now() + recvector._backoff(q.attempts + 1);
                RAISE WARNING 'recvector: profile update for user % failed: %', u, SQLERRM
                    USING HINT = 'It is tried again with backoff (recvector.status() shows it).';
            END;
        END LOOP;
    END IF;
    -- 5. Neighbour upkeep (not counted in the result: it is not queued work).
    BEGIN
        PERFORM recvector._neighbor_worker_step();
    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
        NULL;
    WHEN OTHERS THEN
        RAISE WARNING 'recvector: rebuilding the neighbours failed: %', SQLERRM
            USING HINT = 'SELECT recvector.rebuild_neighbors() shows the error; the worker tries again next round.';
    END;
    PERFORM pg_catalog.set_config('lock_timeout', old_timeout, true);
    RETURN done;
END
$$;
COMMENT ON FUNCTION recvector.process_queue(integer) IS
  'The worker''s round (schedule it with pg_cron or run `recvector worker`): re-embeds up to max_items queued entities, folds up to 100 x max_items deferred interactions, records again the failed interaction batches that are due, and recomputes up to max_items profiles (queued users that are due, then users past the time fallback). It never waits for a lock the application holds: what it cannot take now it takes on a later round. A failed item is retried with exponential backoff (10 s doubling, at most hourly), never dropped; a successful re-embed brings failed entities back at once. Several workers can run side by side. Returns the number done (entities + interactions folded + batches recorded + profiles).';
