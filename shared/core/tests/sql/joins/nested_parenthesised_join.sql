-- reads: p.d.a, p.d.b, p.d.c
SELECT * FROM ((d.a JOIN d.b USING (id)) JOIN d.c USING (id))
