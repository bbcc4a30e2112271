-- reads: p.d.t
EXPORT DATA WITH CONNECTION `us.s3` OPTIONS (uri = 's3://b/out/*', format = 'JSON')
AS (SELECT * FROM d.t)
