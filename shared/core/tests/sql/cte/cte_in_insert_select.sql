-- reads: p.d.src
-- writes: p.d.dst
INSERT INTO d.dst
WITH x AS (SELECT * FROM d.src)
SELECT * FROM x
