-- reads: p.d.t
SELECT JSON '{"a": 1}' AS j, RANGE(DATE '2026-01-01', DATE '2026-02-01') AS r, NUMERIC '1.5' AS n FROM d.t
