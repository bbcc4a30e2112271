-- reads: p.d.t
CREATE TEMP FUNCTION f(x INT64) AS (x * 2);
SELECT f(a) FROM d.t;
