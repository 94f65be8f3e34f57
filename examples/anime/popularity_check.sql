-- Most-popular baseline of the dataset README's protocol, computed inside the database on the rows
-- loaded by `load_anime.py --holdout`: popularity = number of training lists holding the anime,
-- ties by lower anime_id, the user's own (training) items excluded. It must agree with the
-- popularity row of `bench/evaluation/anime_reference.py reference` (measured 2026-12-01, both in
-- Python and with this query: NDCG@10 0.0511, Recall@10 0.0948, MRR@10 0.0379 over 4,567 users).
WITH pop AS (
    SELECT a.anime_id, count(l.user_id) AS n
    FROM anime a LEFT JOIN anime_list l USING (anime_id)
    GROUP BY a.anime_id
), ranked AS (
    SELECT h.user_id,
           1 + (SELECT count(*)
                FROM pop p
                WHERE (p.n > t.n OR (p.n = t.n AND p.anime_id < t.anime_id))
                  AND NOT EXISTS (SELECT 1 FROM anime_list l
                                  WHERE l.user_id = h.user_id AND l.anime_id = p.anime_id)) AS rank
    FROM anime_heldout h JOIN pop t USING (anime_id)
)
SELECT count(*) AS users,
       round(avg(CASE WHEN rank <= 10 THEN 1 / log(2, rank + 1) ELSE 0 END), 4) AS ndcg_at_10,
       round(avg(CASE WHEN rank <= 10 THEN 1 ELSE 0 END), 4) AS recall_at_10,
       round(avg(CASE WHEN rank <= 10 THEN 1.0 / rank ELSE 0 END), 4) AS mrr_at_10
FROM ranked;
