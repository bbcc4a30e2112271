-- reads: p.d.t, p.d.u
SELECT k, SUM(v) FROM d.t GROUP BY k HAVING SUM(v) > (SELECT AVG(v) FROM d.u)
