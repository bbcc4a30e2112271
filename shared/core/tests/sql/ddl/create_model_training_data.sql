-- reads: p.d.train, p.d.holidays
-- writes: p.ml.m
CREATE MODEL ml.m OPTIONS (model_type = 'ARIMA_PLUS')
AS (
  training_data AS (SELECT * FROM d.train),
  custom_holiday AS (SELECT * FROM d.holidays)
)
