-- reads: p.d.t
LOOP
  BREAK;
END LOOP;
SELECT * FROM d.t;
RETURN;
