-- reads: p.d.a, p.d.b, p.d.c
-- writes: p.d.x, p.d.y
CREATE OR REPLACE TABLE d.x AS SELECT * FROM d.a;
INSERT INTO d.y SELECT * FROM d.b;
SELECT * FROM d.c;
