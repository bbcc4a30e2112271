-- reads: p.shop.orders
WITH recent AS (
  SELECT * FROM shop.orders WHERE day > '2026-01-01'
)
SELECT * FROM recent
