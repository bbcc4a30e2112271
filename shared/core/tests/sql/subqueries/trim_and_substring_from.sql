-- reads: p.d.t
SELECT SUBSTR(name, 1, 3), TRIM(name), EXTRACT(HOUR FROM ts AT TIME ZONE 'UTC') FROM d.t
