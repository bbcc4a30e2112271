-- error: 2:15 quoted name is never closed
SELECT * FROM `d.t
