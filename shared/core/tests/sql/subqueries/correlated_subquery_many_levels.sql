-- reads: p.d.a, p.d.b, p.d.c
SELECT * FROM d.a WHERE x IN (SELECT x FROM d.b WHERE y IN (SELECT y FROM d.c WHERE c.z = a.z))
