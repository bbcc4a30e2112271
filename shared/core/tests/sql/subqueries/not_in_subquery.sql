-- reads: p.d.t, p.d.u
SELECT * FROM d.t WHERE id NOT IN (SELECT id FROM d.u WHERE id IS NOT NULL)
