-- reads: p.d.t
SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM d.t)))
