-- reads: p.d.src
CREATE TEMPORARY TABLE staging (a INT64);
INSERT INTO staging SELECT a FROM d.src;
SELECT * FROM _SESSION.staging;
