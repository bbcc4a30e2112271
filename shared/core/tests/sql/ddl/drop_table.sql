-- reads:
-- writes: p.d.old
DROP TABLE d.old
