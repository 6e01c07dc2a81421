-- Ability distribution by test and day: finished sessions, final theta summary per test and date.
SELECT test_id, dt,
       count(DISTINCT session_id) AS sessions,
       avg(theta_after) AS mean_theta,
       stddev_samp(theta_after) AS sd_theta,
       min(theta_after) AS min_theta,
       max(theta_after) AS max_theta,
       avg(se_after) AS mean_se
FROM history
WHERE record_type = 'session' AND outcome = 'finished'
GROUP BY test_id, dt
ORDER BY test_id, dt
