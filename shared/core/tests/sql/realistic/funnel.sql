-- reads: p.events.clicks, p.events.signups, p.events.purchases
SELECT
  c.campaign,
  COUNT(DISTINCT c.user_id) AS clicked,
  COUNT(DISTINCT s.user_id) AS signed_up,
  COUNT(DISTINCT p.user_id) AS purchased,
  SAFE_DIVIDE(COUNT(DISTINCT p.user_id), COUNT(DISTINCT c.user_id)) AS conversion
FROM events.clicks AS c
LEFT JOIN events.signups AS s
  ON s.user_id = c.user_id AND s.ts BETWEEN c.ts AND TIMESTAMP_ADD(c.ts, INTERVAL 7 DAY)
LEFT JOIN events.purchases AS p
  ON p.user_id = s.user_id AND p.ts > s.ts
GROUP BY c.campaign
HAVING clicked > 100
