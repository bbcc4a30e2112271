-- reads: p.d.src
-- writes: p.d.final
CREATE TEMP TABLE staging AS SELECT * FROM d.src WHERE ok;
CREATE OR REPLACE TABLE d.final AS SELECT * FROM staging;
