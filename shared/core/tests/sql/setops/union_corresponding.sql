-- reads: p.d.a, p.d.b
SELECT x, y FROM d.a UNION ALL CORRESPONDING SELECT y, x FROM d.b
