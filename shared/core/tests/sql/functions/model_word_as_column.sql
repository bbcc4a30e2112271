-- reads: p.d.cars
SELECT model, make FROM d.cars WHERE model = 'T'
