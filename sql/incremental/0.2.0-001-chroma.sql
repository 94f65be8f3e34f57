-- RecVector 0.2.0: Chroma sync state.

-- One row per Chroma collection kept in step by recvector.chroma_sync().
CREATE TABLE recvector.chroma_targets (
    url            text NOT NULL,
    tenant         text NOT NULL,
    database       text NOT NULL,
    collection     text NOT NULL,
    collection_id  text,
    watermark      timestamptz,
    last_sync_at   timestamptz,
    last_result    jsonb,
    PRIMARY KEY (url, tenant, database, collection)
);
COMMENT ON TABLE recvector.chroma_targets IS
  'Chroma collections kept in step by recvector.chroma_sync(): the collection id and the watermark of the last successful sync.';
COMMENT ON COLUMN recvector.chroma_targets.watermark IS
  'Every vector change and deletion at or after this time may not be in Chroma yet; the next sync sends them. NULL: the next sync is a full one.';

-- Ids whose vectors were deleted, kept while some Chroma target may not have seen the deletion.
CREATE TABLE recvector.entity_tombstones (
    entity_id   text PRIMARY KEY,
    deleted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX entity_tombstones_deleted_at_idx ON recvector.entity_tombstones (deleted_at);
COMMENT ON TABLE recvector.entity_tombstones IS
  'Entity ids whose vectors were deleted (recorded only while a Chroma target exists); pruned once every target''s watermark has passed them.';

SELECT pg_catalog.pg_extension_config_dump('recvector.chroma_targets', '');
SELECT pg_catalog.pg_extension_config_dump('recvector.entity_tombstones', '');
