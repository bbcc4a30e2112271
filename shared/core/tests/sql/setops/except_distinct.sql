-- reads: p.d.a, p.d.b
SELECT x FROM d.a EXCEPT DISTINCT SELECT x FROM d.b
