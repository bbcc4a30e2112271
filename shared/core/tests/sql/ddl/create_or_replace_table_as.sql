-- reads: p.d.src
-- writes: p.d.out
CREATE OR REPLACE TABLE d.out
PARTITION BY DATE(ts)
CLUSTER BY customer_id
OPTIONS (description = 'daily', partition_expiration_days = 90)
AS SELECT * FROM d.src
