-- reads: p.d.src
-- writes: p.d.v
CREATE VIEW d.v AS SELECT a FROM d.src
