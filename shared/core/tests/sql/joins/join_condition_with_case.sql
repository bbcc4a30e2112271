-- reads: p.d.a, p.d.b
SELECT * FROM d.a JOIN d.b ON CASE WHEN a.x THEN a.id ELSE a.alt END = b.id
