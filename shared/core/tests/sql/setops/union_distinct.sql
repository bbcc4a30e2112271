-- reads: p.d.a, p.d.b
SELECT x FROM d.a UNION DISTINCT SELECT x FROM d.b
