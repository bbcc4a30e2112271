-- reads: p.d.t
SELECT old.a FROM d.t FOR SYSTEM_TIME AS OF '2026-01-01 00:00:00+00' old
