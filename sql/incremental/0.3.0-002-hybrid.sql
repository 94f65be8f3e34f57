-- RecVector 0.3.0: hybrid recommendations — item-to-item neighbours learnt from the application's
-- own interactions, and multi-interest profiles.

-- The collaborative source: for each entity, its top neighbours (entities that the same users
-- liked) with a weight, built by recvector.rebuild_neighbors() from positive interactions.
CREATE TABLE recvector.item_neighbors (
    entity_id     text PRIMARY KEY,
    neighbor_ids  text[] NOT NULL,
    weights       real[] NOT NULL,
    method        text NOT NULL,
    built_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (cardinality(neighbor_ids) = cardinality(weights))
);
COMMENT ON TABLE recvector.item_neighbors IS
  'Item-to-item neighbours learnt from positive interactions (recvector.rebuild_neighbors): for each entity, the entities the same users liked, strongest first, with their weights; the collaborative candidates and term of rec_recommend.';
SELECT pg_catalog.pg_extension_config_dump('recvector.item_neighbors', '');

-- The last (or running) neighbour build: its settings and progress, so that a resumable build can
-- continue where it stopped and status() can say how fresh the neighbours are.
CREATE TABLE recvector.neighbor_builds (
    id            integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    method        text NOT NULL,
    settings      jsonb NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    entities      bigint NOT NULL DEFAULT 0,
    done          bigint NOT NULL DEFAULT 0,
    resume_after  text
);
COMMENT ON TABLE recvector.neighbor_builds IS
  'The last neighbour build (recvector.rebuild_neighbors): method, settings, progress; resume_after is the last entity id a resumable build finished.';
SELECT pg_catalog.pg_extension_config_dump('recvector.neighbor_builds', '');

-- Multi-interest profiles: up to K interest vectors per user, each a time-decayed weighted mean of
-- one cluster of the user's history, with its share of the weight. The existing embedding column
-- stays the mean of everything (K = 1 is exactly the profile of 0.2.0).
ALTER TABLE recvector.rec_user_profiles ADD COLUMN interests @vector@.vector[];
ALTER TABLE recvector.rec_user_profiles ADD COLUMN interest_weights real[];
COMMENT ON COLUMN recvector.rec_user_profiles.interests IS
  'Up to aggregation.interests interest vectors (clusters of the user''s history, strongest first); NULL when the user has one interest (then embedding is it).';
COMMENT ON COLUMN recvector.rec_user_profiles.interest_weights IS
  'Share of the user''s weight behind each interest (sums to 1).';

-- The positive interactions a neighbour build reads (at most neighbors.history per user), written
-- at the start of each build and emptied at its end; not dumped (a build starts over after a restore).
CREATE UNLOGGED TABLE recvector.neighbor_source (
    user_id    text NOT NULL,
    entity_id  text NOT NULL
);
CREATE INDEX neighbor_source_user_idx ON recvector.neighbor_source (user_id);
CREATE INDEX neighbor_source_entity_idx ON recvector.neighbor_source (entity_id);
COMMENT ON TABLE recvector.neighbor_source IS
  'Working table of a neighbour build (recvector.rebuild_neighbors): each user''s recent positive entities.';

-- The collaborative candidates of a profile, computed with it (off the serving path): the
-- entities the neighbours of the user's positive entities point at, with their summed weights,
-- strongest first; rec_recommend reads them with the profile row.
ALTER TABLE recvector.rec_user_profiles ADD COLUMN cf_candidates text[];
ALTER TABLE recvector.rec_user_profiles ADD COLUMN cf_scores real[];
COMMENT ON COLUMN recvector.rec_user_profiles.cf_candidates IS
  'The strongest collaborative candidates (at most aggregation.cf_candidates): entities the neighbours of the user''s positive entities point at, not already in the history.';
COMMENT ON COLUMN recvector.rec_user_profiles.cf_scores IS
  'Collaborative score of each candidate: sum over the user''s positive entities j of weight x decay x neighbour weight w_ji.';

-- _profile_from_history gained p_exclude and new OUT columns (created by the idempotent files).
DROP FUNCTION IF EXISTS recvector._profile_from_history(text, timestamptz, double precision);

-- The scoring settings, resolved once per call from the defaults, the mapping and the arguments
-- (recvector._scoring), for rec_recommend, explain and evaluate alike.
CREATE TYPE recvector.scoring AS (
    alpha           double precision,
    beta            double precision,
    gamma           double precision,
    lambda          double precision,
    exploration     double precision,
    candidate_pool  integer,
    cf_pool         integer,
    popular_pool    integer,
    ef_search       integer,
    mmr_window      integer
);
COMMENT ON TYPE recvector.scoring IS
  'Scoring settings of one ranking: weights of the similarity (alpha), popularity (beta) and collaborative (gamma) terms, MMR lambda, exploration, the three candidate pools, the HNSW search breadth and the MMR window.';

-- rec_recommend gained gamma; _rank was rewritten for the hybrid candidates (the idempotent files
-- create the new signatures).
DROP FUNCTION IF EXISTS @extschema@.rec_recommend(text, integer, double precision, double precision, double precision,
                                                  integer, double precision, bigint, boolean, text, text[]);
DROP FUNCTION IF EXISTS @extschema@.rec_recommend(bigint, integer, double precision, double precision, double precision,
                                                  integer, double precision, bigint, boolean, text, text[]);
DROP FUNCTION IF EXISTS recvector._rank(@vector@.vector, text[], integer, double precision, double precision, double precision,
                                        integer, double precision, bigint, text, integer);
DROP FUNCTION IF EXISTS recvector.explain(text, integer, double precision, double precision, bigint, integer);
DROP FUNCTION IF EXISTS @extschema@.rec_similar(text, integer);
DROP FUNCTION IF EXISTS @extschema@.rec_similar(bigint, integer);
-- evaluate() moved to Python (baselines item-kNN and EASE, intervals) with more arguments and columns.
DROP FUNCTION IF EXISTS recvector.evaluate(integer, integer, double precision, double precision, double precision,
                                           integer, bigint, integer, text, double precision, timestamptz);

-- The popularity term is now on a 0..1 scale: beta * ln(1 + popularity) / ln(1 + max popularity).
-- A mapping loaded before keeps its rankings: its beta is multiplied by today's ln(1 + max popularity).
UPDATE recvector.mapping AS m
SET document = jsonb_set(m.document, '{scoring,beta}',
                         to_jsonb((m.document -> 'scoring' ->> 'beta')::double precision * ln(1 + s.max_pop)))
FROM (SELECT max(popularity) AS max_pop FROM recvector.rec_entity_stats) AS s
WHERE m.id = 1 AND m.document -> 'scoring' ? 'beta' AND s.max_pop > 0;
