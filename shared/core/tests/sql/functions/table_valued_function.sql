-- reads:
SELECT * FROM d.top_products(10)
