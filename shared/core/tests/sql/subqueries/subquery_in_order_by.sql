-- reads: p.d.t, p.d.u
SELECT a FROM d.t ORDER BY (SELECT COUNT(*) FROM d.u WHERE u.a = t.a)
