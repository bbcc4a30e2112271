-- reads: p.d.t
EXPORT DATA OPTIONS (uri = 'gs://b/out/*.csv', format = 'CSV', overwrite = true)
AS SELECT * FROM d.t ORDER BY a
