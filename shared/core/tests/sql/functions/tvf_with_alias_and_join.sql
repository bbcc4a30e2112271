-- reads: p.d.t
SELECT * FROM d.tvf(1) AS f JOIN d.t ON f.id = t.id
