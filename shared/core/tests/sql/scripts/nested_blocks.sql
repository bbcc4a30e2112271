-- reads: p.d.a, p.d.b
BEGIN
  BEGIN
    IF TRUE THEN
      SELECT * FROM d.a;
    END IF;
  END;
  SELECT * FROM d.b;
END;
