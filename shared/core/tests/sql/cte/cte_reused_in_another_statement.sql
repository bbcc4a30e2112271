-- reads: p.d.base, p.d.x
WITH x AS (SELECT * FROM d.base)
SELECT * FROM x;
SELECT * FROM x;
