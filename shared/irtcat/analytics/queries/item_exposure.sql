-- Item exposure: administrations (applied answers, de-duplicated by event) per item.
SELECT item_id,
       count(DISTINCT event_id) AS administrations,
       count(DISTINCT session_id) AS sessions,
       avg(response) AS p_correct
FROM history
WHERE record_type = 'answer' AND outcome = 'applied'
GROUP BY item_id
ORDER BY administrations DESC, item_id
