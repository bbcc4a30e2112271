-- reads: p.d.shape, p.d.src
-- writes: p.d.out
CREATE TABLE d.out LIKE d.shape AS SELECT * FROM d.src
