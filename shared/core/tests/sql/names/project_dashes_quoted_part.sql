-- reads: my-project.shop.orders
SELECT * FROM `my-project`.shop.orders
