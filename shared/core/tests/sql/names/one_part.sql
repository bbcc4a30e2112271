-- reads: p.d.orders
SELECT * FROM orders
