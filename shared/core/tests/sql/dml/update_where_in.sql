-- reads: p.d.bad
-- writes: p.d.t
UPDATE d.t SET flag = TRUE WHERE id IN (SELECT id FROM d.bad)
