-- reads: p.d.real
SELECT REGEXP_EXTRACT(x, r'FROM (\w+)') FROM d.real
