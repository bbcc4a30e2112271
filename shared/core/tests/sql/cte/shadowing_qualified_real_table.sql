-- reads: p.shop.orders
WITH orders AS (SELECT * FROM shop.orders)
SELECT * FROM orders
