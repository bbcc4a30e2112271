-- frequency: daily
-- description: Orders and revenue per customer
-- owner: li@example.com
-- group: finance
SELECT c.name, COUNT(*) AS orders, SUM(o.amount) AS revenue
FROM shop.orders AS o
JOIN `shop.customers` AS c USING (customer_id)
GROUP BY c.name
