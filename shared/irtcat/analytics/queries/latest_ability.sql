-- Latest ability per student: the final theta and SE, scale score and level of each student's most recent finished session.
SELECT student_id,
       max_by(theta_after, processed_at) AS theta,
       max_by(se_after, processed_at) AS se,
       max_by(scale_score, processed_at) AS scale_score,
       max_by(scale_se, processed_at) AS scale_se,
       max_by(level, processed_at) AS level,
       max_by(test_id, processed_at) AS test_id,
       max_by(session_id, processed_at) AS session_id,
       max(processed_at) AS finished_at,
       count(DISTINCT session_id) AS sessions
FROM history
WHERE record_type = 'session' AND outcome = 'finished'
GROUP BY student_id
ORDER BY student_id
