-- reads: p.d.t, p.o.items
SELECT * FROM d.t AS t JOIN o.items ON TRUE
