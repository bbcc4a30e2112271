-- reads:
SELECT * FROM _SESSION.staging
