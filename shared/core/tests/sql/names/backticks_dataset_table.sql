-- reads: p.shop.orders
SELECT * FROM `shop.orders`
