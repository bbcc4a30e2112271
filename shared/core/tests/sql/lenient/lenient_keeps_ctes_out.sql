-- reads: p.d.base
-- lenient: true
WITH x AS (SELECT * FROM d.base) MAGIC SELECT * FROM x
