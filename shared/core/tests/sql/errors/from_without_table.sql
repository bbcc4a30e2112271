-- error: 2:10 FROM names no table
SELECT 1 FROM WHERE TRUE
