-- reads: p.d.a, p.d.b
FROM d.a |> WHERE id IN (SELECT id FROM d.b)
