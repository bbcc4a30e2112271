-- reads: p.logs.requests_2026*
SELECT r.path FROM logs.requests_2026* AS r
