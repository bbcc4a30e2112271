-- reads: p.d.a, p.d.b
FROM d.a, d.b |> WHERE a.id = b.id
