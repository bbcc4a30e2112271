-- reads:
-- writes: p.d.t
TRUNCATE TABLE d.t
