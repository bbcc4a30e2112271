-- reads: p.d.real
SELECT * FROM d /* dataset */ . real
