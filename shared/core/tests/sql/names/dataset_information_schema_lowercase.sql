-- reads: p.shop.INFORMATION_SCHEMA.COLUMNS
SELECT column_name FROM shop.information_schema.columns
