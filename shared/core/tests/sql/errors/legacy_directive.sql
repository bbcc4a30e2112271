-- error: 2:1 legacy SQL
#legacySQL
SELECT x FROM [acme:shop.orders]
