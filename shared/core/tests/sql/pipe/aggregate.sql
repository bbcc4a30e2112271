-- reads: p.d.orders
FROM d.orders
|> WHERE status = 'paid'
|> AGGREGATE SUM(amount) AS revenue GROUP BY customer_id
|> ORDER BY revenue DESC
|> LIMIT 10
