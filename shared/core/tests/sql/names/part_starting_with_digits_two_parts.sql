-- reads: p.ds.2024_sales, p.ds.t
SELECT * FROM ds.2024_sales AS s JOIN ds.t USING (id)
