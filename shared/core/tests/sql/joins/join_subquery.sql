-- reads: p.d.a, p.d.b
SELECT * FROM d.a JOIN (SELECT id, MAX(x) AS x FROM d.b GROUP BY id) AS m USING (id)
