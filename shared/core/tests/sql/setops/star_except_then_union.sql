-- reads: p.d.a, p.d.b
SELECT * EXCEPT (s) FROM d.a UNION ALL SELECT * EXCEPT (s) FROM d.b
