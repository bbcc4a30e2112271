-- reads: p.d.t
SELECT * FROM d.t AS t, t.order.lines AS l
