-- Category frequencies: per item, how often each score was earned (0/1, or a partial-credit item's category 0..m) and its share.
WITH answers AS (
    SELECT DISTINCT event_id, item_id, response
    FROM history
    WHERE record_type = 'answer' AND outcome = 'applied' AND response IS NOT NULL
)
SELECT item_id, response AS category,
       count(*) AS earned,
       count(*) * 1.0 / sum(count(*)) OVER (PARTITION BY item_id) AS share
FROM answers
GROUP BY item_id, response
ORDER BY item_id, response
