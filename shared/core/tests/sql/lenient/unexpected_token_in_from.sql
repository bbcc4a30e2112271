-- reads: p.d.t
-- lenient: true
SELECT * FROM d.t + 1
