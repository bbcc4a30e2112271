-- reads: p.d.b, p.d.base
WITH a AS (SELECT * FROM b),
     b AS (SELECT * FROM d.base)
SELECT * FROM a JOIN b USING (id)
