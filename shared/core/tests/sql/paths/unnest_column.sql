-- reads: p.shop.orders
SELECT o.id, i FROM shop.orders AS o, UNNEST(o.items) AS i
