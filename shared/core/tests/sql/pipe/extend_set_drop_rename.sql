-- reads: p.d.a
FROM d.a |> EXTEND a + 1 AS b |> SET b = b * 2 |> DROP c |> RENAME b AS bb
