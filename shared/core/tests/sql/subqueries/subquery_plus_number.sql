-- reads: p.d.t
SELECT ((SELECT MAX(a) FROM d.t) + 1) AS next_a
