-- reads: p.shop.orders
SELECT o.id, pos, i FROM shop.orders o, UNNEST(o.items) AS i WITH OFFSET AS pos
