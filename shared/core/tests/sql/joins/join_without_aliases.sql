-- reads: p.shop.orders, p.shop.customers
SELECT orders.id, customers.name FROM shop.orders JOIN shop.customers ON orders.cid = customers.id
