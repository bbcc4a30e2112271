-- reads: p.logs.requests_*
SELECT r.path FROM logs.requests_* r WHERE r._TABLE_SUFFIX = '2026'
