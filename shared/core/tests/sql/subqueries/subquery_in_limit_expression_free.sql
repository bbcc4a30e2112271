-- reads: p.d.t
SELECT a FROM d.t LIMIT 10 OFFSET 5
