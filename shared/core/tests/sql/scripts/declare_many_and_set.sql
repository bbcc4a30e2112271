-- reads: p.d.t, p.d.u
DECLARE a, b INT64;
SET a = (SELECT COUNT(*) FROM d.t);
SET (a, b) = (SELECT AS STRUCT MIN(x), MAX(x) FROM d.u);
