-- reads: p.d.t, p.d.u
SELECT * FROM d.t AS t WHERE EXISTS (SELECT 1 FROM d.u AS u WHERE u.id = t.id)
