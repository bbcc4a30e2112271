-- reads:
-- writes: p.d.dst
INSERT INTO d.dst (a, b) VALUES (1, 'x'), (2, 'y')
