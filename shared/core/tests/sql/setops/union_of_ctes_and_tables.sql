-- reads: p.d.a, p.d.b
WITH x AS (SELECT id FROM d.a)
SELECT id FROM x UNION ALL SELECT id FROM d.b
