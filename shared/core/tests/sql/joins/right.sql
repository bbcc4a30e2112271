-- reads: p.d.a, p.d.b
SELECT * FROM d.a RIGHT JOIN d.b USING (id)
