-- Deletions of entity vectors, remembered for the incremental Chroma sync (set-based: one
-- statement-level trigger with a transition table).
CREATE OR REPLACE FUNCTION recvector._record_tombstones()
RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM recvector.chroma_targets) THEN
        INSERT INTO recvector.entity_tombstones (entity_id, deleted_at)
        SELECT DISTINCT g.entity_id, now() FROM gone AS g
        ON CONFLICT (entity_id) DO UPDATE SET deleted_at = excluded.deleted_at;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION recvector._record_tombstones() IS
  'Internal: AFTER DELETE trigger on recvector.entity_vectors; records deleted ids for recvector.chroma_sync().';

CREATE OR REPLACE TRIGGER entity_vectors_tombstones
    AFTER DELETE ON recvector.entity_vectors
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION recvector._record_tombstones();
