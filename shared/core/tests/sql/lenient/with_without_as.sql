-- reads: p.d.t
-- lenient: true
WITH x (SELECT 1) SELECT * FROM d.t
