-- error: 2:15 legacy SQL
SELECT x FROM [acme:shop.orders]
