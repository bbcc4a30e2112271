-- reads: p.d.commandes_été
SELECT * FROM d.`commandes_été`
