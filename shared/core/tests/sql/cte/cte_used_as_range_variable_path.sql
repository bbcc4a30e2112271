-- reads: p.d.base
WITH c AS (SELECT id, [1, 2] AS arr FROM d.base)
SELECT id, x FROM c, c.arr AS x
