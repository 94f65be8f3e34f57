-- Write path: every interaction, from a trigger, recvector.log_interaction() or a deferred fold,
-- goes through recvector._ingest(). It is set-based and cheap: counters, entity stats, and either an
-- O(D) incremental nudge or a queue entry; never an embedding call.
--
-- Lock order (docs/reliability.md), the same on every path: profile rows in user_id order, then
-- entity-stat rows in entity_id order, then queue rows in user_id order. The application's path
-- (trigger, log_interaction) waits for those locks like for any row lock. Maintenance (the worker,
-- rebuilds) never waits for a lock the application holds: it takes them NOWAIT or SKIP LOCKED
-- (nowait => true here), so it can never be one side of a deadlock with the application.

CREATE OR REPLACE FUNCTION recvector._ingest(evs recvector.interaction[], mapping recvector.mapping DEFAULT NULL,
                                             nowait boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m recvector.mapping := coalesce(mapping, recvector._mapping());
    strategy text := m.document -> 'aggregation' ->> 'strategy';
    threshold integer := (m.document -> 'aggregation' ->> 'batch_threshold')::integer;
    refresh_every integer := (m.document -> 'aggregation' ->> 'full_refresh_every')::integer;
    hl double precision := (m.compiled -> 'aggregation' ->> 'half_life_seconds')::double precision;
    cf_limit integer := coalesce((m.document -> 'aggregation' ->> 'cf_candidates')::integer, 200);
BEGIN
    IF evs IS NULL OR cardinality(evs) = 0 THEN
        RETURN 0;
    END IF;
    IF nowait THEN
        -- Every existing row this call writes, locked up front in the documented order, or an error.
        PERFORM 1 FROM recvector.rec_user_profiles AS p
        WHERE p.user_id IN (SELECT e.user_id FROM unnest(evs) AS e) ORDER BY p.user_id FOR UPDATE NOWAIT;
        PERFORM 1 FROM recvector.rec_entity_stats AS s
        WHERE s.entity_id IN (SELECT e.entity_id FROM unnest(evs) AS e) ORDER BY s.entity_id FOR UPDATE NOWAIT;
    END IF;

    -- 1. Per-user counters (takes the profile row locks, in user_id order).
    INSERT INTO recvector.rec_user_profiles AS p (user_id, interaction_count_since_update)
    SELECT e.user_id, count(*)::integer FROM unnest(evs) AS e GROUP BY e.user_id ORDER BY e.user_id
    ON CONFLICT (user_id) DO UPDATE
        SET interaction_count_since_update = p.interaction_count_since_update + excluded.interaction_count_since_update;

    -- 2. Per-entity feedback counts and popularity (entity_id order).
    INSERT INTO recvector.rec_entity_stats AS s (entity_id, feedback_counts, popularity, version)
    SELECT x.entity_id, jsonb_object_agg(x.kind, x.cnt ORDER BY x.kind), sum(x.pos)::double precision, 1
    FROM (SELECT e.entity_id, e.kind, count(*) AS cnt, count(*) FILTER (WHERE e.weight > 0) AS pos
          FROM unnest(evs) AS e GROUP BY e.entity_id, e.kind) AS x
    GROUP BY x.entity_id ORDER BY x.entity_id
    ON CONFLICT (entity_id) DO UPDATE
        -- recvector._add_counts, written out: a sub-select here is planned with the statement.
        SET feedback_counts = s.feedback_counts
                || (SELECT jsonb_object_agg(c.key, c.value::numeric + coalesce((s.feedback_counts ->> c.key)::numeric, 0))
                    FROM jsonb_each_text(excluded.feedback_counts) AS c),
            popularity = s.popularity + excluded.popularity,
            version = s.version + 1,
            updated_at = now();

    IF strategy = 'incremental' THEN
        -- 3a. Interests and collaborative candidates first (from the profile as it was) ...
        UPDATE recvector.rec_user_profiles AS p
        SET (interests, interest_weights, cf_candidates, cf_scores) =
            (SELECT x.n_interests, x.n_shares, x.n_candidates, x.n_scores
             FROM recvector._nudged(p.interests, p.interest_weights, u.old_w, p.cf_candidates, p.cf_scores,
                                    recvector._decay(p.last_interaction_at, u.t_ref, hl),
                                    u.ids, u.vecs, u.wds, cf_limit) AS x)
        FROM (SELECT e.user_id, t.t_ref,
                     CASE WHEN t.emb_null THEN 0 ELSE t.acc * recvector._decay(t.last_at, t.t_ref, hl) END AS old_w,
                     array_agg(e.entity_id ORDER BY e.occurred_at, e.entity_id) AS ids,
                     array_agg(v.embedding ORDER BY e.occurred_at, e.entity_id) AS vecs,
                     array_agg(e.weight * recvector._decay(e.occurred_at, t.t_ref, hl) ORDER BY e.occurred_at, e.entity_id) AS wds
              FROM unnest(evs) AS e
              LEFT JOIN recvector.entity_vectors AS v ON v.entity_id = e.entity_id
              JOIN (SELECT e2.user_id, max(pp.accumulated_weight) AS acc, max(pp.last_interaction_at) AS last_at,
                           bool_and(pp.embedding IS NULL) AS emb_null,
                           greatest(max(e2.occurred_at), max(pp.last_interaction_at)) AS t_ref
                    FROM unnest(evs) AS e2 JOIN recvector.rec_user_profiles AS pp ON pp.user_id = e2.user_id
                    GROUP BY e2.user_id) AS t ON t.user_id = e.user_id
              WHERE e.weight <> 0
              GROUP BY e.user_id, t.t_ref, t.emb_null, t.acc, t.last_at) AS u
        WHERE p.user_id = u.user_id;

        -- 3b. ... then the O(D) moving-average nudge, exactly equivalent to folding the events one by one:
        --     t_ref = max(last_interaction_at, newest event)
        --     old   = accumulated_weight * decay(last_interaction_at -> t_ref)
        --     new   = (old * profile + sum(w_j d_j v_j)) / (old + sum(|w_j| d_j))
        UPDATE recvector.rec_user_profiles AS p
        SET embedding = CASE WHEN u.old_w + u.a > 0 THEN
                            recvector._scale(
                                CASE WHEN p.embedding IS NULL OR recvector._scale(p.embedding, u.old_w) IS NULL THEN u.s
                                     WHEN u.s IS NULL THEN recvector._scale(p.embedding, u.old_w)
                                     ELSE recvector._scale(p.embedding, u.old_w) OPERATOR(@vector@.+) u.s END,
                                1.0 / (u.old_w + u.a))
                            ELSE p.embedding END,
            accumulated_weight = u.old_w + u.a,
            last_interaction_at = u.t_ref,
            version = p.version + 1,
            last_updated = now()
        FROM (
            SELECT ev.user_id, t.t_ref,
                   CASE WHEN t.emb_null THEN 0 ELSE t.acc * recvector._decay(t.last_at, t.t_ref, hl) END AS old_w,
                   @vector@.sum(recvector._scale(ev.embedding, ev.weight * recvector._decay(ev.occurred_at, t.t_ref, hl))) AS s,
                   sum(abs(ev.weight) * recvector._decay(ev.occurred_at, t.t_ref, hl)) AS a
            FROM (SELECT e.user_id, e.weight, e.occurred_at, v.embedding
                  FROM unnest(evs) AS e JOIN recvector.entity_vectors AS v ON v.entity_id = e.entity_id
                  WHERE e.weight <> 0) AS ev
            JOIN (SELECT e2.user_id, max(pp.accumulated_weight) AS acc, max(pp.last_interaction_at) AS last_at,
                         bool_and(pp.embedding IS NULL) AS emb_null,
                         greatest(max(e2.occurred_at), max(pp.last_interaction_at)) AS t_ref
                  FROM unnest(evs) AS e2 JOIN recvector.rec_user_profiles AS pp ON pp.user_id = e2.user_id
                  GROUP BY e2.user_id) AS t ON t.user_id = ev.user_id
            GROUP BY ev.user_id, t.t_ref, t.emb_null, t.acc, t.last_at
        ) AS u
        WHERE p.user_id = u.user_id;

        -- Periodic full refresh corrects drift (history limit, entity re-embeds).
        INSERT INTO recvector.queue (kind, key)
        SELECT 'profile', p.user_id FROM recvector.rec_user_profiles AS p
        WHERE p.user_id IN (SELECT e.user_id FROM unnest(evs) AS e)
          AND p.interaction_count_since_update >= refresh_every
        ORDER BY p.user_id
        ON CONFLICT (kind, key) DO NOTHING;
    ELSE
        -- 3c. full: queue a recompute at the batch threshold, or at once for a user with no profile yet.
        INSERT INTO recvector.queue (kind, key)
        SELECT 'profile', p.user_id FROM recvector.rec_user_profiles AS p
        WHERE p.user_id IN (SELECT e.user_id FROM unnest(evs) AS e)
          AND (p.interaction_count_since_update >= threshold OR p.embedding IS NULL)
        ORDER BY p.user_id
        ON CONFLICT (kind, key) DO NOTHING;
    END IF;
    RETURN cardinality(evs);
END
$$;
COMMENT ON FUNCTION recvector._ingest(recvector.interaction[], recvector.mapping, boolean) IS
  'Internal: records interactions set-based: user counters, entity stats, then the incremental nudge or a queued full recompute (mapping: the loaded mapping row when the caller has read it already; nowait: lock every existing row up front without waiting, for maintenance paths).';
