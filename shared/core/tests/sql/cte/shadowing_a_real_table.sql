-- reads: p.d.orders
WITH orders AS (SELECT * FROM orders WHERE status = 'paid')
SELECT * FROM orders
