-- error: 3:20 string is never closed
SELECT *
FROM d.t WHERE a = 'oops
