-- reads:
-- writes: p.d.t
LOAD DATA INTO d.t FROM FILES (format = 'CSV', uris = ['gs://b/x.csv'])
