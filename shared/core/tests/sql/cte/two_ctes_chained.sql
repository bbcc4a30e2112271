-- reads: p.shop.orders, p.shop.customers
WITH o AS (SELECT * FROM shop.orders),
     c AS (SELECT * FROM shop.customers),
     joined AS (SELECT * FROM o JOIN c USING (customer_id))
SELECT * FROM joined
