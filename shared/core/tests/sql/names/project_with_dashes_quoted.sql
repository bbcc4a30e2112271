-- reads: my-project-42.shop.orders
SELECT * FROM `my-project-42.shop.orders`
