-- reads: p.d.t
SELECT ARRAY_TRANSFORM(xs, x -> x + 1), ARRAY_FILTER(xs, e -> e > 0) FROM d.t
