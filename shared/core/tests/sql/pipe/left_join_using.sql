-- reads: p.d.a, p.d.b
FROM d.a |> LEFT JOIN d.b USING (id) |> SELECT *
