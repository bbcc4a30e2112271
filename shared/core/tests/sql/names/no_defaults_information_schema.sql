-- defaults: none
-- reads: region-us.INFORMATION_SCHEMA.JOBS
SELECT * FROM region-us.INFORMATION_SCHEMA.JOBS
