-- error: 2:19 a table is missing
SELECT * FROM d.t JOIN
