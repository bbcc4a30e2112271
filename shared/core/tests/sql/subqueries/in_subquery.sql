-- reads: p.d.t, p.d.u
SELECT * FROM d.t WHERE id IN (SELECT id FROM d.u)
