-- reads: p.d.t
ASSERT (SELECT COUNT(*) FROM d.t) > 0 AS 'd.t is empty';
