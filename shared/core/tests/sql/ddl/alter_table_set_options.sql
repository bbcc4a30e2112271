-- reads:
-- writes: p.d.t
ALTER TABLE IF EXISTS d.t SET OPTIONS (description = 'x')
