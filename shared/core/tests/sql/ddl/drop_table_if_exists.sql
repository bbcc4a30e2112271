-- reads:
-- writes: p.d.old
DROP TABLE IF EXISTS d.old
