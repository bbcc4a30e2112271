-- reads: p.d.real
-- don't be fooled
SELECT * FROM d.real
