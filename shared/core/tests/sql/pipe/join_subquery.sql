-- reads: p.d.a, p.d.b
FROM d.a |> JOIN (SELECT id, x FROM d.b) AS s USING (id)
