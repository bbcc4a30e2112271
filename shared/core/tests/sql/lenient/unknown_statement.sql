-- reads: p.d.t
-- lenient: true
FROBNICATE (SELECT * FROM d.t)
