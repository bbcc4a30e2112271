-- reads: p.d.base
WITH c AS (SELECT * FROM d.base) SELECT * FROM c AS k, k.arr
