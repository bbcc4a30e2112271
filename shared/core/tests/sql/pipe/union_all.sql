-- reads: p.d.a, p.d.b, p.d.c
FROM d.a |> UNION ALL (SELECT * FROM d.b), (FROM d.c)
