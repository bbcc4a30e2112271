-- reads: p.d.base
WITH outer_cte AS (
  WITH inner_cte AS (SELECT * FROM d.base)
  SELECT * FROM inner_cte
)
SELECT * FROM outer_cte
