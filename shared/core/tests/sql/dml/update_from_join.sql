-- reads: p.d.a, p.d.b
-- writes: p.d.t
UPDATE d.t SET x = a.x FROM d.a JOIN d.b USING (id) WHERE t.id = a.id
