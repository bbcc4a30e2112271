-- reads: p.d.t
DECLARE i INT64 DEFAULT 0;
outer_loop: LOOP
  SET i = i + 1;
  IF i >= 3 THEN LEAVE outer_loop; END IF;
END LOOP outer_loop;
SELECT * FROM d.t;
