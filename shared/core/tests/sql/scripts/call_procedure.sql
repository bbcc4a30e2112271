-- reads: p.d.t
-- unknowable: 1
CALL d.refresh(CURRENT_DATE());
SELECT * FROM d.t;
