-- frequency: daily
-- description: The two customers who spent most
-- owner: li@example.com
-- group: finance
-- extract: csv
WITH ranked AS (
  -- `ranked` is a CTE, not a table: it is no dependency. `customer_totals` is
  -- analytics.customer_totals, this file's dataset being the default.
  SELECT name, revenue, RANK() OVER (ORDER BY revenue DESC) AS position
  FROM customer_totals
)
SELECT name, revenue, position
FROM ranked
WHERE position <= 2
