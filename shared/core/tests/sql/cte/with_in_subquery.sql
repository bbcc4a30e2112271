-- reads: p.d.base
SELECT * FROM (
  WITH x AS (SELECT * FROM d.base)
  SELECT * FROM x
)
