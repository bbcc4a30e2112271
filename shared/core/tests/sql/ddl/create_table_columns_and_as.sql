-- reads: p.d.src
-- writes: p.d.out
CREATE TABLE d.out (a INT64, b STRING) AS SELECT a, b FROM d.src
