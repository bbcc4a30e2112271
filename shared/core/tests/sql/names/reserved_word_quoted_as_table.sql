-- reads: p.d.select, p.d.order
SELECT * FROM `select` JOIN d.`order` USING (id)
