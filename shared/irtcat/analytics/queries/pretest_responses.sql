-- Responses per pretest item: the data volume available to calibrate each pretest item.
SELECT item_id,
       count(DISTINCT event_id) AS responses,
       avg(response) AS p_correct,
       min(dt) AS first_day,
       max(dt) AS last_day
FROM history
WHERE record_type = 'answer' AND outcome = 'applied' AND scored = false
GROUP BY item_id
ORDER BY responses DESC, item_id
