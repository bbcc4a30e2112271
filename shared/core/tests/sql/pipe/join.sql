-- reads: p.d.orders, p.d.customers
FROM d.orders AS o
|> JOIN d.customers AS c ON c.id = o.customer_id
|> SELECT o.id, c.name
