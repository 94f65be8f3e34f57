-- recvector._rank gained a last argument (the HNSW search breadth, scoring.ef_search); the
-- idempotent files create the new signature.
DROP FUNCTION IF EXISTS recvector._rank(vector, text[], integer, double precision, double precision, double precision,
                                        integer, double precision, bigint, text);
