-- reads:
-- writes: p.d.t
DELETE d.t WHERE TRUE
