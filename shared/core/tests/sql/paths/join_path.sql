-- reads: p.shop.orders
SELECT * FROM shop.orders AS o JOIN o.items AS i ON TRUE
