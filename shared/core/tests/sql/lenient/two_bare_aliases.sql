-- reads: p.d.t, p.d.u
-- lenient: true
SELECT * FROM d.t a b JOIN d.u ON TRUE
