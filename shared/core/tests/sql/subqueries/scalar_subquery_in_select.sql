-- reads: p.d.t, p.d.u
SELECT a, (SELECT MAX(b) FROM d.u) AS m FROM d.t
