-- reads: p.d.a
SELECT a, b FROM d.a
|> WHERE a > b
|> AGGREGATE COUNT(*) AS n
