-- reads: p.d.src, p.d.step1
-- writes: p.d.step1, p.d.step2
CREATE OR REPLACE TABLE d.step1 AS SELECT * FROM d.src;
CREATE OR REPLACE TABLE d.step2 AS SELECT * FROM d.step1;
