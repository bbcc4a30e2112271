-- reads: p.d.t
SELECT AS VALUE STRUCT(a, b) FROM d.t
