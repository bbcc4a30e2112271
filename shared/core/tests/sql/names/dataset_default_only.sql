-- defaults: shop
-- reads: shop.orders, other.t, acme.x.y
SELECT * FROM orders, other.t, acme.x.y
