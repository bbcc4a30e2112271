-- reads:
-- writes: p.d.t
LOAD DATA OVERWRITE d.t (a INT64, b STRING) FROM FILES (format = 'PARQUET', uris = ['gs://b/*.parquet'])
