-- reads: p.d.a
SELECT * REPLACE (LOWER(name) AS name) FROM d.a
