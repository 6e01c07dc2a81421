-- Blueprint conformance per test: finished sessions of each blueprint version, and how many met every rule (none relaxed).
SELECT test_id, blueprint_version,
       count(DISTINCT session_id) AS sessions,
       count(DISTINCT CASE WHEN relaxed IS NULL THEN session_id END) AS sessions_meeting_every_rule,
       count(DISTINCT CASE WHEN relaxed IS NOT NULL THEN session_id END) AS sessions_with_relaxed_rules
FROM history
WHERE record_type = 'session' AND outcome = 'finished' AND blueprint_version IS NOT NULL
GROUP BY test_id, blueprint_version
ORDER BY test_id, blueprint_version
