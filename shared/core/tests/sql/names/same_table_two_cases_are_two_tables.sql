-- reads: p.d.Orders, p.d.orders
SELECT * FROM d.orders UNION ALL SELECT * FROM d.Orders
