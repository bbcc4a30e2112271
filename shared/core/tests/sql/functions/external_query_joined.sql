-- reads: p.d.orders
SELECT * FROM d.orders AS o JOIN EXTERNAL_QUERY('acme.us.pg', 'SELECT id FROM customers') AS c ON c.id = o.cid
