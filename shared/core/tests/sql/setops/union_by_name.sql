-- reads: p.d.a, p.d.b
SELECT x, y FROM d.a UNION ALL BY NAME SELECT y, x FROM d.b
