-- reads: p.d.t, p.d.u, p.d.w
SELECT * FROM d.t JOIN d.u ON t.id = u.id AND u.k IN (SELECT k FROM d.w)
