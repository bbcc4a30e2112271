-- reads: p.d.a
SELECT * EXCEPT (secret) FROM d.a
