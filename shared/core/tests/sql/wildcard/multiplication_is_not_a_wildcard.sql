-- reads: p.d.t
SELECT a * 2, t.* FROM d.t
