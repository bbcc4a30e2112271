-- reads: p.d.daily-totals
SELECT * FROM `d.daily-totals`
