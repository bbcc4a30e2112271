-- reads: p.d.a, p.d.b, p.d.c
SELECT x FROM d.a UNION ALL SELECT x FROM d.b UNION ALL SELECT x FROM d.c
