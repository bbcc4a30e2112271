-- reads: p.d.prices
-- writes: p.d.items
UPDATE d.items AS i
SET price = p.price
FROM d.prices AS p
WHERE i.sku = p.sku
