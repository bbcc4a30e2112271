-- reads: p.d.real
SELECT '''
SELECT * FROM d.inside
''' AS s FROM d.real
