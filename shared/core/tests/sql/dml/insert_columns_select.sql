-- reads: p.d.src
-- writes: p.d.dst
INSERT INTO d.dst (a, b) SELECT x, y FROM d.src
