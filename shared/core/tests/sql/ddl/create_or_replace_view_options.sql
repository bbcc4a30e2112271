-- reads: p.d.src
-- writes: p.d.v
CREATE OR REPLACE VIEW d.v OPTIONS (description = 'x') AS SELECT a FROM d.src
