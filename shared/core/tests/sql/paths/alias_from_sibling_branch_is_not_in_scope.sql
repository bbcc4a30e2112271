-- reads: p.a.x, p.d.t, p.d.u
SELECT * FROM d.t AS a
UNION ALL
SELECT * FROM d.u, a.x
