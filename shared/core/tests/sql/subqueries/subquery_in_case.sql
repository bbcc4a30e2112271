-- reads: p.d.t, p.d.u
SELECT CASE WHEN a > (SELECT MIN(a) FROM d.u) THEN 'hi' ELSE 'lo' END AS band FROM d.t
