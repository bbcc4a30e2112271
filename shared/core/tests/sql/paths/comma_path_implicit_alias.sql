-- reads: p.shop.orders
SELECT orders.id, item.sku
FROM shop.orders, orders.items AS item
