-- reads: p.d.t
SELECT DISTINCT AS STRUCT a, b FROM d.t
