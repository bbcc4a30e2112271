-- reads: acme.shop.orders
SELECT * FROM `acme`.`shop`.`orders`
