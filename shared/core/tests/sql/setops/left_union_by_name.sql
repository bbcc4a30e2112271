-- reads: p.d.a, p.d.b
SELECT x FROM d.a LEFT UNION ALL BY NAME SELECT x, y FROM d.b
