-- reads: p.d.t, p.d.u
SELECT STRUCT((SELECT 1 FROM d.u LIMIT 1) AS one, a) FROM d.t
