-- reads: p.d.x, p.d.base
WITH x AS (SELECT * FROM d.base)
SELECT * FROM x JOIN d.x USING (id)
