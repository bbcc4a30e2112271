-- reads: p.d.t
SELECT a, b, SUM(c) FROM d.t GROUP BY ALL
