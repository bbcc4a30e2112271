-- reads: p.d.n
WITH n AS (SELECT * FROM n)
SELECT * FROM n
