-- frequency: daily
-- description: The shop's customers
-- owner: ana@example.com
-- group: sales
SELECT customer_id, name
FROM UNNEST([
  STRUCT(10 AS customer_id, 'ana' AS name),
  STRUCT(20, 'bo'),
  STRUCT(30, 'cy')
])
