-- reads: p.d.src
-- writes: p.d.out
CREATE TABLE d.out AS (SELECT * FROM d.src)
