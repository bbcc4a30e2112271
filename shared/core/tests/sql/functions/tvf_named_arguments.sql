-- reads: p.d.sales
SELECT * FROM d.summarise(input => TABLE d.sales, period => 'month')
