-- reads: p.d.events
SELECT user_id, event, ts FROM d.events
QUALIFY ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY ts DESC) = 1
