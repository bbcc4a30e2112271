-- reads: p.d.a, p.d.b, p.d.c
SELECT * FROM d.c WHERE id IN (SELECT id FROM d.a UNION ALL SELECT id FROM d.b)
