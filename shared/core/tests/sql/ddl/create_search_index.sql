-- reads:
CREATE SEARCH INDEX idx ON d.logs (ALL COLUMNS)
