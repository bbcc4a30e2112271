-- reads: p.d.after
CREATE PROCEDURE d.p()
BEGIN
  SELECT * FROM d.inside;
  BEGIN
    SELECT CASE WHEN TRUE THEN 1 END;
  END;
END;
SELECT * FROM d.after
