-- reads: p.d.a, p.d.b
SELECT * FROM d.a INNER JOIN d.b ON a.id = b.id
