-- reads: p.d.a, p.d.b
SELECT * FROM d.a CROSS JOIN d.b
