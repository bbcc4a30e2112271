-- reads: p.d.a
FROM d.a |> WINDOW SUM(x) OVER (PARTITION BY k) AS s |> DISTINCT
