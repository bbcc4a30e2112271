-- reads: p.d.t
-- writes: p.d.log
DECLARE i INT64 DEFAULT 0;
LOOP
  SET i = i + 1;
  IF i > (SELECT COUNT(*) FROM d.t) THEN
    LEAVE;
  END IF;
  INSERT INTO d.log VALUES (i);
END LOOP;
