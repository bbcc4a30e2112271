-- reads: p.shop.orders
SELECT o.id, (SELECT SUM(i.qty) FROM o.items AS i) AS qty
FROM shop.orders AS o
