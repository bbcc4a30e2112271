-- reads: p.d.prices
-- writes: p.d.items
UPDATE d.items SET price = (SELECT MAX(p) FROM d.prices) WHERE TRUE
