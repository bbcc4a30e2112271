-- reads: p.d.t
SELECT * FROM d.t FOR SYSTEM_TIME AS OF @as_of
