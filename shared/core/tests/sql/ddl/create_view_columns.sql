-- reads: p.d.src
-- writes: p.d.v
CREATE VIEW IF NOT EXISTS d.v (x, y) AS SELECT a, b FROM d.src
