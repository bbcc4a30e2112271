-- reads: p.d.real
#standardSQL
SELECT * FROM d.real
