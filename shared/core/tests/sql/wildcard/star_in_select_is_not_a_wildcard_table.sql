-- reads: p.d.t
SELECT * FROM d.t
