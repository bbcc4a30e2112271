-- reads: p.d.t
SELECT x FROM UNNEST((SELECT ARRAY_AGG(v) FROM d.t)) AS x
