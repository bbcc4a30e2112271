-- reads: p.d.base
WITH x AS (SELECT * FROM d.base)
SELECT * FROM (SELECT * FROM (SELECT * FROM x))
