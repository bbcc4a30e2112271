-- reads: p.d.queue
-- writes: p.d.done
WHILE (SELECT COUNT(*) FROM d.queue) > 0 DO
  INSERT INTO d.done SELECT * FROM d.queue LIMIT 1;
END WHILE;
