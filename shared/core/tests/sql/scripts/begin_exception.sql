-- reads: p.d.t, p.d.fallback
BEGIN
  SELECT * FROM d.t;
EXCEPTION WHEN ERROR THEN
  SELECT @@error.message;
  SELECT * FROM d.fallback;
END;
