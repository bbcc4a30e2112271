-- reads:
-- writes: p.d.ext
CREATE EXTERNAL TABLE d.ext OPTIONS (format = 'CSV', uris = ['gs://bucket/*.csv'])
