-- reads: p.d.t
SELECT s.a.b, arr[OFFSET(0)], arr[SAFE_ORDINAL(2)], STRUCT<a INT64, b STRING>(1, 'x') FROM d.t
