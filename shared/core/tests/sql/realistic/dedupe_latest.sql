-- reads: p.raw.events
SELECT AS VALUE ARRAY_AGG(e ORDER BY e.ingested_at DESC LIMIT 1)[OFFSET(0)]
FROM raw.events AS e
GROUP BY e.event_id
