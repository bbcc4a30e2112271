-- reads: p.d.t
EXECUTE IMMEDIATE 'SELECT COUNT(*) FROM d.t';
