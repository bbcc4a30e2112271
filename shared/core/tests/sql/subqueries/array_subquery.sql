-- reads: p.d.t, p.d.u
SELECT ARRAY(SELECT AS STRUCT a, b FROM d.u WHERE u.k = t.k) AS rows FROM d.t AS t
