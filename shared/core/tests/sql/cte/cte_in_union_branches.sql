-- reads: p.d.a
WITH x AS (SELECT * FROM d.a)
SELECT * FROM x UNION ALL SELECT * FROM x
