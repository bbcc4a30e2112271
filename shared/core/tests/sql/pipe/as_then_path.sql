-- reads: p.d.a
FROM d.a |> AS t |> JOIN t.items AS i ON TRUE
