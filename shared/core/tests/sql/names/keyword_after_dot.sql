-- reads: p.d.group
SELECT * FROM d.`group`
