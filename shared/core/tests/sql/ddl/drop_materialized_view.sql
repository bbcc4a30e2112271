-- reads:
-- writes: p.d.mv
DROP MATERIALIZED VIEW d.mv
