-- reads: p.logs.requests
SELECT * FROM logs.requests TABLESAMPLE SYSTEM (10 PERCENT)
