-- reads: p.d.a
WITH x AS (SELECT * FROM d.a)
FROM x |> WHERE ok
