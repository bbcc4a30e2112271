-- reads: p.d.src
-- writes: p.d.out
CREATE OR REPLACE TABLE d.out AS
WITH x AS (SELECT * FROM d.src)
SELECT * FROM x
