-- reads: p.d.a, p.d.b
SELECT * FROM d.a FULL OUTER JOIN d.b ON a.id = b.id
