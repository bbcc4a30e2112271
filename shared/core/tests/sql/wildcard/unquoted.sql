-- reads: p.analytics_123.events_*
SELECT event_name, COUNT(*) AS n
FROM analytics_123.events_*
WHERE _TABLE_SUFFIX BETWEEN '20260101' AND '20260131'
GROUP BY event_name
