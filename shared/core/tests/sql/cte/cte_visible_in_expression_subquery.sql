-- reads: p.d.base, p.d.t
WITH x AS (SELECT id FROM d.base)
SELECT * FROM d.t WHERE id IN (SELECT id FROM x)
