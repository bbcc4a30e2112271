-- reads: p.shop.orders
SELECT * FROM shop.orders AS o CROSS JOIN UNNEST(o.tags) AS tag
