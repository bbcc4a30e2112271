-- reads: p.d.real
SELECT b'FROM d.bytes' FROM d.real
