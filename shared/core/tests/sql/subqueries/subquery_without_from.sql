-- reads: p.d.t
SELECT (SELECT 1) AS one, a FROM d.t
