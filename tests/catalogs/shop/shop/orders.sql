-- import: shop_db
-- frequency: daily
-- description: The shop's orders, copied from its PostgreSQL database
-- owner: ana@example.com
-- group: sales
SELECT order_id, customer_id, amount
FROM public.orders
