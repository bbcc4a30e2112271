-- reads: p.d.real
-- FROM d.commented
SELECT * FROM d.real -- JOIN d.after_code
