-- reads: p.d.meta
SELECT `table`, table_name FROM d.meta
