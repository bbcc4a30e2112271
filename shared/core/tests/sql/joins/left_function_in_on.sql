-- reads: p.d.a, p.d.b
SELECT * FROM d.a JOIN d.b ON LEFT(a.code, 3) = RIGHT(b.code, 3)
