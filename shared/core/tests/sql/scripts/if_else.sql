-- reads: p.d.flags, p.d.a, p.d.b
-- writes: p.d.out
IF (SELECT COUNT(*) FROM d.flags) > 0 THEN
  INSERT INTO d.out SELECT * FROM d.a;
ELSE
  INSERT INTO d.out SELECT * FROM d.b;
END IF;
