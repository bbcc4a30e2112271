-- reads: p.d.t
DECLARE last_day DATE DEFAULT (SELECT MAX(day) FROM d.t);
