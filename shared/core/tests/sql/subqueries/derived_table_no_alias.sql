-- reads: p.d.t
SELECT * FROM (SELECT a FROM d.t)
