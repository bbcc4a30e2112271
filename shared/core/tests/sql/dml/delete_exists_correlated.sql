-- reads: p.d.ids
-- writes: p.d.t
DELETE d.t WHERE EXISTS (SELECT 1 FROM d.ids WHERE ids.id = t.id)
