-- reads: p.d.ids
-- writes: p.d.t
DELETE FROM d.t AS x WHERE x.id IN (SELECT id FROM d.ids)
