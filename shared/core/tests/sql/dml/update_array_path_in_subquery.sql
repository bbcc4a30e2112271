-- reads:
-- writes: p.d.t
UPDATE d.t SET total = (SELECT SUM(i.qty) FROM t.items AS i) WHERE TRUE
