-- reads: p.d.t, p.d.u
SELECT COALESCE(a, (SELECT ANY_VALUE(a) FROM d.u)) FROM d.t
