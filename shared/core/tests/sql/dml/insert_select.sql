-- reads: p.d.src
-- writes: p.d.dst
INSERT INTO d.dst SELECT * FROM d.src
