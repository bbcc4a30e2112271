-- reads: p.d.sales
SELECT * FROM d.summarise((SELECT * FROM d.sales WHERE y = 2026))
