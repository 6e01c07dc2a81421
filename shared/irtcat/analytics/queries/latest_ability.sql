-- Latest ability per student: the final theta and SE of each student's most recent finished session.
SELECT student_id,
       max_by(theta_after, processed_at) AS theta,
       max_by(se_after, processed_at) AS se,
       max_by(test_id, processed_at) AS test_id,
       max_by(session_id, processed_at) AS session_id,
       max(processed_at) AS finished_at,
       count(DISTINCT session_id) AS sessions
FROM history
WHERE record_type = 'session' AND outcome = 'finished'
GROUP BY student_id
ORDER BY student_id
