-- reads: p.d.t
CREATE TEMP AGGREGATE FUNCTION my_sum(x INT64) AS (SUM(x));
SELECT my_sum(a) FROM d.t
