-- reads:
CREATE OR REPLACE PROCEDURE d.refresh(day DATE)
BEGIN
  DECLARE n INT64;
  IF day IS NULL THEN
    SET day = CURRENT_DATE();
  END IF;
  INSERT INTO d.target SELECT * FROM d.source WHERE dt = day;
  SET n = (SELECT COUNT(*) FROM d.target);
END
