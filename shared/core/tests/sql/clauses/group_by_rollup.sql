-- reads: p.d.t
SELECT a, b, SUM(c) FROM d.t GROUP BY ROLLUP (a, b)
