-- error: 3:21 Unterminated
SELECT *
FROM d.t WHERE a = 'oops
