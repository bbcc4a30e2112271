-- reads: p.d.real
SELECT "FROM d.inside_string" AS s FROM d.real
