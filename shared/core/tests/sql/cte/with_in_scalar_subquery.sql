-- reads: p.d.base, p.d.t
SELECT (WITH x AS (SELECT MAX(v) AS m FROM d.base) SELECT m FROM x) AS m, a FROM d.t
