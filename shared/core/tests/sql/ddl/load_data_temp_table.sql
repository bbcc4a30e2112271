-- reads:
-- writes: p.d.t
LOAD DATA INTO TEMP TABLE staging FROM FILES (format = 'CSV', uris = ['gs://b/x.csv']);
INSERT INTO d.t SELECT * FROM staging
