-- reads:
-- writes: p.d.v, p.ml.m
DROP VIEW d.v; DROP MODEL IF EXISTS ml.m
