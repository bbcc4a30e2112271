-- reads: p.d.t
SELECT IF(a > 0, 'pos', 'neg') AS sign FROM d.t
