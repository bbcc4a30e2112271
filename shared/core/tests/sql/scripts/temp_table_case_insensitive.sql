-- reads:
CREATE TEMP TABLE Staging AS SELECT 1 AS a;
SELECT * FROM staging;
