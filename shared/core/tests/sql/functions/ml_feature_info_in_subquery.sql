-- reads: p.ml.m, p.d.t
SELECT * FROM d.t WHERE f IN (SELECT input FROM ML.FEATURE_INFO(MODEL ml.m))
