-- reads: p.d.t
CREATE TEMP FUNCTION add_one(x INT64) AS (x + 1);
SELECT add_one(a) FROM d.t
