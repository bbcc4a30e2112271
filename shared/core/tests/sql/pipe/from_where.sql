-- reads: p.d.t
FROM d.t
|> WHERE a > 1
