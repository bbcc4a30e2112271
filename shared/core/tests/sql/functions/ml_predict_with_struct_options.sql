-- reads: p.ml.m, p.d.x
SELECT * FROM ML.PREDICT(MODEL ml.m, TABLE d.x, STRUCT(0.6 AS threshold))
