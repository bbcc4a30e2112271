-- reads: p.d.days
-- unknowable: 1
CALL d.refresh((SELECT MAX(day) FROM d.days));
