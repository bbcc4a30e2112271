-- reads: p.d.a, p.d.b, p.d.c, p.d.e
SELECT * FROM d.a
JOIN d.b ON b.aid = a.id
LEFT JOIN d.c ON c.bid = b.id
JOIN d.e USING (id)
