-- reads: p.d.a, p.d.b
SELECT * FROM d.a AS `first` JOIN d.b `second` ON `first`.id = `second`.id
