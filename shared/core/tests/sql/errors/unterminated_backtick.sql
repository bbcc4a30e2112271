-- error: 2:15 Expected close delimiter
SELECT * FROM `d.t
