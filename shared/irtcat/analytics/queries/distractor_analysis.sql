-- Distractor analysis: per multiple-choice item, the share of each option chosen by ability third (final theta of the session).
WITH answers AS (
    SELECT DISTINCT event_id, session_id, item_id, "option", response
    FROM history
    WHERE record_type = 'answer' AND outcome = 'applied' AND "option" IS NOT NULL
),
ability AS (
    SELECT session_id, max(theta_after) AS theta
    FROM history
    WHERE record_type = 'session'
    GROUP BY session_id
),
thirds AS (
    SELECT session_id, ntile(3) OVER (ORDER BY theta) AS ability_third
    FROM ability
)
SELECT a.item_id, t.ability_third, a."option",
       count(*) AS chosen,
       count(*) * 1.0 / sum(count(*)) OVER (PARTITION BY a.item_id, t.ability_third) AS share,
       max(a.response) AS scored_correct
FROM answers a
JOIN thirds t ON t.session_id = a.session_id
GROUP BY a.item_id, t.ability_third, a."option"
ORDER BY a.item_id, t.ability_third, a."option"
