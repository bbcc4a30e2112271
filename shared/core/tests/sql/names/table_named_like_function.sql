-- reads: p.d.count
SELECT COUNT(*) FROM d.count
