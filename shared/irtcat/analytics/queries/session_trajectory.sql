-- Ability trajectory of one session: theta and SE after every applied answer (replace SESSION_ID).
SELECT session_id, student_id, seq, item_id, response, scored,
       max(theta_before) AS theta_before, max(theta_after) AS theta_after, max(se_after) AS se_after
FROM history
WHERE record_type = 'answer' AND outcome = 'applied' AND session_id = 'SESSION_ID'
GROUP BY session_id, student_id, seq, item_id, response, scored
ORDER BY seq
