-- reads: p.d.t
SELECT COLLATE(name, 'und:ci'), FORMAT_TIMESTAMP('%F', ts, 'UTC') FROM d.t
