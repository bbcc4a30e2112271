-- reads: p.d.t
SELECT * FROM (SELECT a, b FROM d.t) AS x
