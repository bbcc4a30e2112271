-- reads: p.shop.orders
SELECT * FROM shop.orders AS o LEFT JOIN o.items AS i ON i.qty > 0
