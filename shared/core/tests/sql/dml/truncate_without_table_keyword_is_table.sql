-- reads:
-- writes: p.d.t
TRUNCATE TABLE `p.d.t`
