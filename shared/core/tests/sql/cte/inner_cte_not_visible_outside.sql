-- reads: p.d.base, p.d.inner_cte
WITH outer_cte AS (
  WITH inner_cte AS (SELECT * FROM d.base)
  SELECT * FROM inner_cte
)
SELECT * FROM outer_cte JOIN inner_cte USING (id)
