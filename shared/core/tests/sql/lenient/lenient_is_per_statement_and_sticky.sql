-- reads: p.d.a, p.d.b
-- lenient: true
SELECT * FROM d.a a b;
SELECT * FROM d.b;
