-- reads: p.d.src
CREATE OR REPLACE TABLE FUNCTION d.by_country(c STRING)
AS SELECT * FROM d.src WHERE country = c
