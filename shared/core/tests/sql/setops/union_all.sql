-- reads: p.d.a, p.d.b
SELECT x FROM d.a UNION ALL SELECT x FROM d.b
