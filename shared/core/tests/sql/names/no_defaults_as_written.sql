-- defaults: none
-- reads: orders, shop.customers, acme.shop.items
SELECT * FROM orders JOIN shop.customers USING (id) JOIN `acme.shop.items` USING (id)
