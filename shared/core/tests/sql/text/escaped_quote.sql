-- reads: p.d.real
SELECT 'it\'s FROM d.escaped' FROM d.real
