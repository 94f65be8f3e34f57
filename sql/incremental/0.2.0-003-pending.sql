-- RecVector 0.2.0: deferred capture (aggregation.capture = 'deferred').

-- Interactions captured by the auto-logging trigger (or log_interaction) and not folded into the
-- counters, stats and profiles yet. Append-only and without indexes, so that capturing costs the
-- application's INSERT one narrow row; recvector.fold_pending() (run by process_queue) folds them.
CREATE TABLE recvector.pending_interactions (
    user_id      text NOT NULL,
    entity_id    text NOT NULL,
    kind         text NOT NULL,
    weight       double precision NOT NULL,
    occurred_at  timestamptz NOT NULL,
    captured_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE recvector.pending_interactions IS
  'Interactions captured with aggregation.capture = deferred, waiting for recvector.fold_pending() (run by recvector.process_queue()) to fold them into rec_user_profiles and rec_entity_stats.';

SELECT pg_catalog.pg_extension_config_dump('recvector.pending_interactions', '');
