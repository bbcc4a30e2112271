-- reads: p.data.region, p.model.table_name
SELECT * FROM data.region JOIN model.table_name USING (id)
