-- error: 4:7 never closed
SELECT *
FROM d.t
WHERE (a = 1
