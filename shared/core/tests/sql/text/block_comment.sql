-- reads: p.d.real
SELECT * /* FROM d.commented
 JOIN d.multi_line */ FROM d.real
