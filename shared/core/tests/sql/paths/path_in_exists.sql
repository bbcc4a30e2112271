-- reads: p.shop.orders
SELECT * FROM shop.orders AS o
WHERE EXISTS (SELECT 1 FROM o.items AS i WHERE i.sku = 'X')
