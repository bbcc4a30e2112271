-- reads: p.app.users, p.app.sessions
WITH cohorts AS (
  SELECT user_id, DATE_TRUNC(DATE(created_at), WEEK) AS cohort_week
  FROM app.users
),
activity AS (
  SELECT DISTINCT s.user_id, DATE_TRUNC(DATE(s.started_at), WEEK) AS active_week
  FROM app.sessions AS s
),
grid AS (
  SELECT c.cohort_week, w AS week_number
  FROM (SELECT DISTINCT cohort_week FROM cohorts) AS c,
       UNNEST(GENERATE_ARRAY(0, 12)) AS w
)
SELECT g.cohort_week, g.week_number,
       COUNT(DISTINCT a.user_id) / COUNT(DISTINCT c.user_id) AS retention
FROM grid AS g
JOIN cohorts AS c ON c.cohort_week = g.cohort_week
LEFT JOIN activity AS a
  ON a.user_id = c.user_id
 AND a.active_week = DATE_ADD(g.cohort_week, INTERVAL g.week_number WEEK)
GROUP BY 1, 2
