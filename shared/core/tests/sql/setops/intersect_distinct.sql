-- reads: p.d.a, p.d.b
SELECT x FROM d.a INTERSECT DISTINCT SELECT x FROM d.b
