-- reads: p.d.a, p.d.b
WITH x AS (SELECT * FROM d.a)
SELECT * FROM (
  WITH x AS (SELECT * FROM d.b)
  SELECT * FROM x
) JOIN x USING (id)
