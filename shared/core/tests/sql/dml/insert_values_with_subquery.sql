-- reads: p.d.src
-- writes: p.d.dst
INSERT INTO d.dst (a, b) VALUES (1, (SELECT MAX(b) FROM d.src))
