-- reads: p.d.a, p.d.b
SELECT COUNT(*) FROM (SELECT id FROM d.a UNION DISTINCT SELECT id FROM d.b)
