-- reads: p.d.days
-- unknowable: 1
EXECUTE IMMEDIATE FORMAT('DELETE FROM d.t WHERE day = %t', (SELECT MAX(day) FROM d.days));
