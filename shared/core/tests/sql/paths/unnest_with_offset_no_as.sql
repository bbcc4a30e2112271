-- reads: p.shop.orders
SELECT * FROM shop.orders o, UNNEST(o.items) i WITH OFFSET pos
