-- reads: p.d.t
SELECT * FROM d.t WHERE 3 IN UNNEST(xs)
