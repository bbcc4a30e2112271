-- reads: p.d.src
WITH x AS (FROM d.src |> WHERE ok)
SELECT * FROM x
