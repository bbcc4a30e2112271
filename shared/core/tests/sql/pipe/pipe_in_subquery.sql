-- reads: p.d.a, p.d.b
SELECT * FROM d.b WHERE k IN (FROM d.a |> SELECT k)
