-- reads: p.d.sales
SELECT * FROM d.summarise(TABLE d.sales, 'monthly')
