-- reads: p.sales.orders, p.sales.stores
FROM sales.orders
|> WHERE order_date >= DATE_SUB(CURRENT_DATE(), INTERVAL 90 DAY)
|> JOIN sales.stores USING (store_id)
|> EXTEND EXTRACT(WEEK FROM order_date) AS week
|> AGGREGATE SUM(amount) AS revenue, COUNT(*) AS orders GROUP BY region, week
|> WHERE orders > 10
|> ORDER BY region, week
