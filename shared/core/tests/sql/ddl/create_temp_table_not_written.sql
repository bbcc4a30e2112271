-- reads: p.d.src
CREATE TEMP TABLE scratch AS SELECT * FROM d.src
