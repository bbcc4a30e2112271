-- reads: p.d.t
SELECT ARRAY(SELECT x * 2 FROM UNNEST(t.xs) AS x) AS doubled FROM d.t AS t
