-- reads: p.mart.orders, p.mart.customers
ASSERT (SELECT COUNT(*) FROM mart.orders WHERE order_id IS NULL) = 0
  AS 'orders without an id';
ASSERT NOT EXISTS (
  SELECT 1 FROM mart.orders AS o
  LEFT JOIN mart.customers AS c USING (customer_id)
  WHERE c.customer_id IS NULL
) AS 'orders of unknown customers';
