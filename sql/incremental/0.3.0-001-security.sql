-- RecVector 0.3.0: a queue that heals itself, and events no computation can choke on.

-- Failed items are retried with backoff instead of given up after 5 back-to-back attempts.
ALTER TABLE recvector.queue ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now();
COMMENT ON COLUMN recvector.queue.next_attempt_at IS
  'When the worker takes the item next: now for new items, later after a failure (exponential backoff, at most an hour).';
CREATE INDEX queue_due_idx ON recvector.queue (kind, next_attempt_at, id);
ALTER TABLE recvector.failed_interactions ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now();
COMMENT ON COLUMN recvector.failed_interactions.next_attempt_at IS
  'When recvector.process_queue() records this batch again (exponential backoff after each failure).';

-- Events logged before 0.3.0 could carry a weight or a time that makes every profile computation
-- fail (1e39, 'infinity'): they are moved aside, and no such event can be stored again.
CREATE TABLE recvector.quarantined_events (
    id              bigint PRIMARY KEY,
    user_id         text NOT NULL,
    entity_id       text NOT NULL,
    kind            text NOT NULL,
    weight          double precision NOT NULL,
    occurred_at     timestamptz NOT NULL,
    reason          text NOT NULL,
    quarantined_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE recvector.quarantined_events IS
  'Events of recvector.events that no computation can use (a weight outside [-100, 100] or NaN, an infinite time), kept aside instead of failing profile rebuilds.';
WITH bad AS (
    DELETE FROM recvector.events AS e
    WHERE NOT (e.weight BETWEEN -100 AND 100) OR NOT isfinite(e.occurred_at)
    RETURNING e.*)
INSERT INTO recvector.quarantined_events (id, user_id, entity_id, kind, weight, occurred_at, reason)
SELECT b.id, b.user_id, b.entity_id, b.kind, b.weight, b.occurred_at,
       CASE WHEN NOT isfinite(b.occurred_at) THEN 'time is not finite' ELSE 'weight outside [-100, 100]' END
FROM bad AS b;
ALTER TABLE recvector.events
    ADD CONSTRAINT events_weight_range CHECK (weight BETWEEN -100 AND 100),
    ADD CONSTRAINT events_time_finite CHECK (isfinite(occurred_at));
WITH bad AS (
    DELETE FROM recvector.pending_interactions AS p
    WHERE NOT (p.weight BETWEEN -100 AND 100) OR NOT isfinite(p.occurred_at)
    RETURNING p.*)
INSERT INTO recvector.quarantined_events (id, user_id, entity_id, kind, weight, occurred_at, reason)
SELECT -row_number() OVER (), b.user_id, b.entity_id, b.kind, b.weight, b.occurred_at, 'pending: weight or time out of range'
FROM bad AS b;
ALTER TABLE recvector.pending_interactions
    ADD CONSTRAINT pending_weight_range CHECK (weight BETWEEN -100 AND 100),
    ADD CONSTRAINT pending_time_finite CHECK (isfinite(occurred_at));
SELECT pg_catalog.pg_extension_config_dump('recvector.quarantined_events', '');

-- _ingest gained its nowait argument (created by the idempotent files).
DROP FUNCTION IF EXISTS recvector._ingest(recvector.interaction[], recvector.mapping);
