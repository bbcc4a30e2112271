-- reads: p.d.training
-- writes: p.ml.m
CREATE OR REPLACE MODEL ml.m
OPTIONS (model_type = 'logistic_reg', input_label_cols = ['churned'])
AS SELECT * FROM d.training
