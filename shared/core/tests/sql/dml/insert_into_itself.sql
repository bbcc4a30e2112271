-- reads: p.d.t
-- writes: p.d.t
INSERT INTO d.t SELECT * FROM d.t WHERE day = CURRENT_DATE() - 1
