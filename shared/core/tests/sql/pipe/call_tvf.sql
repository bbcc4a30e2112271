-- reads: p.d.a, p.d.lookup
FROM d.a |> CALL d.enrich(TABLE d.lookup, 3)
