-- reads: p.d.seed
WITH RECURSIVE s AS (SELECT * FROM d.seed),
r AS (SELECT x FROM s UNION ALL SELECT x + 1 FROM r WHERE x < 5)
SELECT * FROM r
