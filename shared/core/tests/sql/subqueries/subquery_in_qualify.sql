-- reads: p.d.t, p.d.u
SELECT a FROM d.t QUALIFY a > (SELECT MIN(a) FROM d.u)
