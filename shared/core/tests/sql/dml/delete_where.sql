-- reads:
-- writes: p.d.t
DELETE FROM d.t WHERE day < '2020-01-01'
