-- reads: p.d.base
WITH `my cte` AS (SELECT * FROM d.base)
SELECT * FROM `my cte`
