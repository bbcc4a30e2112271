-- reads: p.d.a, p.d.b
SELECT * FROM d.a LEFT OUTER JOIN d.b USING (id)
