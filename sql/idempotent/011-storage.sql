-- Storage of vectors: the vector(D) column type and the HNSW index, made when a mapping is loaded.

-- Vector columns typed vector(D) and the HNSW cosine index: done by set_schema, and again by
-- recvector.repair() after a pg_dump/restore (which restores data but not an extension table's
-- altered column type or its index).
CREATE OR REPLACE FUNCTION recvector._ensure_storage(dims integer)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    result jsonb := '{}';
    cur text;
BEGIN
    SELECT CASE WHEN atttypid = '@vector@.vector'::regtype THEN atttypmod END INTO cur FROM pg_catalog.pg_attribute
    WHERE attrelid = 'recvector.entity_vectors'::regclass AND attname = 'embedding';
    IF cur IS DISTINCT FROM dims::text THEN
        IF EXISTS (SELECT 1 FROM recvector.entity_vectors WHERE @vector@.vector_dims(embedding) <> dims) THEN
            RAISE EXCEPTION 'stored entity vectors do not have % dimensions', dims
                USING ERRCODE = 'data_exception', HINT = 'SELECT recvector.reembed(''<mapping json>''::jsonb);';
        END IF;
        UPDATE recvector.rec_user_profiles SET embedding = NULL
        WHERE embedding IS NOT NULL AND @vector@.vector_dims(embedding) <> dims;
        EXECUTE format('ALTER TABLE recvector.entity_vectors ALTER COLUMN embedding TYPE @vector@.vector(%s)', dims);
        EXECUTE format('ALTER TABLE recvector.rec_user_profiles ALTER COLUMN embedding TYPE @vector@.vector(%s)', dims);
        result := result || jsonb_build_object('column_type', format('vector(%s)', dims));
    END IF;
    IF to_regclass('recvector.entity_vectors_embedding_hnsw') IS NULL THEN
        CREATE INDEX entity_vectors_embedding_hnsw ON recvector.entity_vectors
            USING hnsw (embedding @vector@.vector_cosine_ops) WITH (m = 32, ef_construction = 200);
        result := result || '{"hnsw_index": "created"}';
    ELSE
        result := result || '{"hnsw_index": "present"}';
    END IF;
    RETURN result;
END
$$;
COMMENT ON FUNCTION recvector._ensure_storage(integer) IS
  'Internal: types the vector columns vector(dims) and creates the HNSW cosine index if missing.';

CREATE OR REPLACE FUNCTION recvector.repair()
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    m recvector.mapping := recvector._mapping();
    result jsonb;
BEGIN
    result := recvector._ensure_storage((m.document -> 'embedding' ->> 'dimensions')::integer);
    -- Relations and extension types have new oids after pg_restore: find the mapped columns again.
    UPDATE recvector.mapping AS mm
    SET compiled = mm.compiled
            || jsonb_build_object('columns', recvector._refresh_columns(mm.compiled -> 'columns'),
                                  'entity_columns', recvector._refresh_columns(mm.compiled -> 'entity_columns'),
                                  'sources', (SELECT coalesce(jsonb_object_agg(s.key, s.value
                                                  || jsonb_build_object('columns', recvector._refresh_columns(s.value -> 'columns'),
                                                                        'table_oid', coalesce(pg_catalog.to_regclass(s.value ->> 'table')::oid,
                                                                                              (s.value ->> 'table_oid')::oid))), '{}')
                                              FROM jsonb_each(mm.compiled -> 'sources') AS s))
    WHERE mm.id = 1 AND mm.compiled ? 'columns';
    PERFORM recvector._generate_mapped();
    RETURN result;
END
$$;
COMMENT ON FUNCTION recvector.repair() IS
  'Restores what pg_dump/restore does not carry for an extension''s tables and functions: the vector(D) column type, the HNSW index and the per-mapping query functions. Safe to run any time; returns what it did.';
