-- Test length and stop reasons: how many sessions stopped by each rule, and how long they were.
SELECT test_id, stop_reason,
       count(DISTINCT session_id) AS sessions,
       avg(items_answered) AS mean_length,
       min(items_answered) AS min_length,
       max(items_answered) AS max_length
FROM history
WHERE record_type = 'session' AND outcome = 'finished'
GROUP BY test_id, stop_reason
ORDER BY test_id, sessions DESC
