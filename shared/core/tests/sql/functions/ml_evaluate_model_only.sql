-- reads: acme.ml.m
SELECT * FROM ML.EVALUATE(MODEL `acme.ml.m`)
