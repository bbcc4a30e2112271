-- reads: p.shop.orders
SELECT o.id, item.sku
FROM shop.orders AS o, o.items AS item
