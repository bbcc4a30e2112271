-- reads: p.d.a
FROM d.a |> TABLESAMPLE SYSTEM (5 PERCENT) |> PIVOT(SUM(x) FOR k IN ('a', 'b'))
