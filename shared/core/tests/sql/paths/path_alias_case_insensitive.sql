-- reads: p.shop.orders
SELECT * FROM shop.orders AS Ord, ord.items
