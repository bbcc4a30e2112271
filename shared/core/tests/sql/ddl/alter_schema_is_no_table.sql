-- reads:
ALTER SCHEMA d SET OPTIONS (default_table_expiration_days = 30)
