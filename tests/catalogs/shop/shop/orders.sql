-- frequency: daily
-- description: The shop's orders (literal rows stand in for an import)
-- owner: ana@example.com
-- group: sales
SELECT order_id, customer_id, amount
FROM UNNEST([
  STRUCT(1 AS order_id, 10 AS customer_id, 30.0 AS amount),
  STRUCT(2, 10, 12.5),
  STRUCT(3, 20, 99.0),
  STRUCT(4, 30, 5.0),
  STRUCT(5, 20, 1.0)
])
