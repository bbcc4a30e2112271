-- reads: p.d.days
-- writes: p.d.out
FOR day IN (SELECT d FROM d.days ORDER BY d)
DO
  INSERT INTO d.out SELECT day.d;
END FOR;
