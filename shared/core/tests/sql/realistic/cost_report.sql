-- reads: p.region-us.INFORMATION_SCHEMA.JOBS_BY_PROJECT, p.admin.teams
SELECT
  DATE(creation_time) AS day,
  COALESCE(t.team, 'unknown') AS team,
  SUM(total_bytes_billed) / POW(1024, 4) * 6.25 AS usd
FROM `region-us`.INFORMATION_SCHEMA.JOBS_BY_PROJECT AS j
LEFT JOIN admin.teams AS t
  ON t.label = (SELECT value FROM UNNEST(j.labels) WHERE key = 'team')
WHERE creation_time >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 30 DAY)
  AND job_type = 'QUERY'
GROUP BY 1, 2
ORDER BY day DESC, usd DESC
