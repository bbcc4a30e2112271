-- reads: p.d.a, p.d.b, p.d.c
SELECT * FROM d.a, d.b, d.c WHERE a.id = b.id AND b.id = c.id
