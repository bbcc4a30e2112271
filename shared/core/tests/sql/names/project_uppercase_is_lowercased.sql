-- reads: acme.Shop.Orders
SELECT * FROM `ACME.Shop.Orders`
