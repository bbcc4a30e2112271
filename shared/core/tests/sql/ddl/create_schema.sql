-- reads:
CREATE SCHEMA IF NOT EXISTS d2 OPTIONS (location = 'EU')
