-- reads: p.d.t1, p.d.t2, p.d.t3, p.d.t4
WITH a AS (SELECT * FROM d.t1), b AS (SELECT * FROM d.t2), c AS (SELECT * FROM d.t3),
 e AS (SELECT * FROM a UNION ALL SELECT * FROM b UNION ALL SELECT * FROM c), f AS (SELECT * FROM e JOIN d.t4 USING (id))
SELECT * FROM f
