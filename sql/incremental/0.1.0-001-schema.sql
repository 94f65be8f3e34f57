-- RecVector 0.1.0: the extension's own schema and tables.
-- Frozen after release: later versions add new files, they never edit this one.

CREATE SCHEMA recvector;
COMMENT ON SCHEMA recvector IS 'RecVector: content-based recommendations inside PostgreSQL (tables, internal functions).';

-- The loaded mapping of the application's tables (one row) and the SQL compiled from it.
CREATE TABLE recvector.mapping (
    id          int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    document    jsonb NOT NULL,
    compiled    jsonb NOT NULL,
    loaded_at   timestamptz NOT NULL DEFAULT now(),
    loaded_by   name NOT NULL DEFAULT current_user
);
COMMENT ON TABLE recvector.mapping IS
  'The mapping document loaded by recvector.set_schema() and the identifier-quoted SQL compiled from it.';

-- One embedding per entity, computed once; the fingerprint is a hash of model + composed text.
CREATE TABLE recvector.entity_vectors (
    entity_id    text PRIMARY KEY,
    embedding    vector NOT NULL,
    fingerprint  text NOT NULL,
    model        text NOT NULL,
    embedded_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE recvector.entity_vectors IS
  'Entity embeddings (pgvector). The column is typed vector(D) and gets its HNSW cosine index when a mapping is loaded.';

-- Pre-aggregated user profiles: one row per user, updated at write time.
CREATE TABLE recvector.rec_user_profiles (
    user_id                         text PRIMARY KEY,
    embedding                       vector,
    last_updated                    timestamptz NOT NULL DEFAULT now(),
    version                         bigint NOT NULL DEFAULT 0,
    interaction_count_since_update  integer NOT NULL DEFAULT 0,
    accumulated_weight              double precision NOT NULL DEFAULT 0,
    last_interaction_at             timestamptz
);
COMMENT ON TABLE recvector.rec_user_profiles IS
  'User profiles: a time-decayed weighted mean of the stored vectors of the entities a user interacted with.';
COMMENT ON COLUMN recvector.rec_user_profiles.accumulated_weight IS
  'Sum of |weight| x decay of the interactions folded into the profile, decayed to last_interaction_at.';
COMMENT ON COLUMN recvector.rec_user_profiles.interaction_count_since_update IS
  'Interactions recorded since the last full recompute of this profile.';

-- Per-entity feedback aggregates (popularity for scoring and cold start).
CREATE TABLE recvector.rec_entity_stats (
    entity_id        text PRIMARY KEY,
    feedback_counts  jsonb NOT NULL DEFAULT '{}'::jsonb,
    popularity       double precision NOT NULL DEFAULT 0,
    version          bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rec_entity_stats_popularity_idx ON recvector.rec_entity_stats (popularity DESC, entity_id);
COMMENT ON TABLE recvector.rec_entity_stats IS
  'Per-entity feedback counts by interaction type; popularity = number of positive interactions.';

-- Interactions the application does not store itself (recvector.log_interaction).
CREATE TABLE recvector.events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      text NOT NULL,
    entity_id    text NOT NULL,
    kind         text NOT NULL,
    weight       double precision NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_user_idx ON recvector.events (user_id, occurred_at DESC);
COMMENT ON TABLE recvector.events IS
  'Interactions logged with recvector.log_interaction() for events the application does not store in its own tables.';

-- Work queue: profile recomputes (and, later, entity embeddings) done off the interaction path.
CREATE TABLE recvector.queue (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('profile', 'entity')),
    key          text NOT NULL,
    enqueued_at  timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    UNIQUE (kind, key)
);
COMMENT ON TABLE recvector.queue IS
  'Work done off the interaction path: drained by recvector.process_queue() (pg_cron or `recvector worker`).';

-- Auto-logging triggers that RecVector attached to mapped tables (so they can be removed exactly).
CREATE TABLE recvector.triggers (
    source        text PRIMARY KEY,
    table_oid     regclass NOT NULL,
    trigger_name  name NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE recvector.triggers IS 'Opt-in AFTER INSERT triggers created by recvector.enable_auto_logging().';

-- One interaction as the engine sees it, whatever table it came from.
CREATE TYPE recvector.interaction AS (
    user_id      text,
    entity_id    text,
    kind         text,
    weight       double precision,
    occurred_at  timestamptz
);
COMMENT ON TYPE recvector.interaction IS 'An interaction normalised from any mapped source: ids as text, weight, kind, time.';

SELECT pg_catalog.pg_extension_config_dump('recvector.mapping', '');
SELECT pg_catalog.pg_extension_config_dump('recvector.entity_vectors', '');
SELECT pg_catalog.pg_extension_config_dump('recvector.rec_user_profiles', '');
SELECT pg_catalog.pg_extension_config_dump('recvector.rec_entity_stats', '');
SELECT pg_catalog.pg_extension_config_dump('recvector.events', '');
SELECT pg_catalog.pg_extension_config_dump('recvector.queue', '');
SELECT pg_catalog.pg_extension_config_dump('recvector.triggers', '');

-- Interactions a trigger could not record (the app's INSERT went through): kept verbatim for
-- recvector.retry_failed().
CREATE TABLE recvector.failed_interactions (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source     text NOT NULL,
    rows       jsonb NOT NULL,
    error      text NOT NULL,
    error_code text,
    failed_at  timestamptz NOT NULL DEFAULT now(),
    attempts   integer NOT NULL DEFAULT 0
);
COMMENT ON TABLE recvector.failed_interactions IS
  'Rows of mapped interaction tables whose recording failed inside the auto-logging trigger (the app''s INSERT still succeeded). Replayed by recvector.retry_failed().';
SELECT pg_catalog.pg_extension_config_dump('recvector.failed_interactions', '');

-- Identity sequences travel with their tables through pg_dump.
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('recvector.events', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('recvector.queue', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('recvector.failed_interactions', 'id'), '');

-- Named business rules (recvector.set_filter): a boolean expression over the entity table's
-- columns, checked with sqlglot and compiled to the query that lists the entities it allows.
CREATE TABLE recvector.filters (
    name        text PRIMARY KEY,
    expression  text NOT NULL,
    compiled    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE recvector.filters IS
  'Named filters for rec_recommend(filter => name): the expression as given and the SQL compiled from it.';
SELECT pg_catalog.pg_extension_config_dump('recvector.filters', '');
