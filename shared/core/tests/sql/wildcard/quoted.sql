-- reads: p.analytics_123.events_*
SELECT * FROM `analytics_123.events_*` WHERE _TABLE_SUFFIX > '2026'
