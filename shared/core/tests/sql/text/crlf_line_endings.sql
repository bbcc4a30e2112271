-- reads: p.d.a, p.d.b
SELECT *
FROM d.a
JOIN d.b USING (id)
