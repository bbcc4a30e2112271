-- reads: p.logs.requests, p.logs.users
SELECT * FROM logs.requests TABLESAMPLE SYSTEM (1 PERCENT) AS r JOIN logs.users u ON r.uid = u.id
