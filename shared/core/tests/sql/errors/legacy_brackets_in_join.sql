-- error: 3:6 legacy SQL
SELECT x FROM d.t
JOIN [acme:shop.orders] USING (id)
