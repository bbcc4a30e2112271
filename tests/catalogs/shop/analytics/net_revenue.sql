-- frequency: daily
-- description: Revenue less refunds, per customer
-- owner: li@example.com
-- group: finance
SELECT t.name, t.revenue - IFNULL(SUM(r.amount), 0) AS net_revenue
FROM customer_totals AS t
JOIN shop.customers AS c USING (name)
LEFT JOIN shop.refunds AS r USING (customer_id)
GROUP BY t.name, t.revenue
