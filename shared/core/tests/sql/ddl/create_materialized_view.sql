-- reads: p.d.src
-- writes: p.d.mv
CREATE MATERIALIZED VIEW d.mv OPTIONS (enable_refresh = true) AS SELECT k, SUM(v) AS s FROM d.src GROUP BY k
