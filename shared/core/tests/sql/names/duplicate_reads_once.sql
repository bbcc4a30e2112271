-- reads: p.d.t
SELECT * FROM d.t AS a JOIN d.t AS b USING (id) JOIN `p.d.t` AS c USING (id)
