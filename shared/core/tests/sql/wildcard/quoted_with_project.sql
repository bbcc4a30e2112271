-- reads: acme.analytics_123.events_intraday_*
SELECT * FROM `acme.analytics_123.events_intraday_*`
