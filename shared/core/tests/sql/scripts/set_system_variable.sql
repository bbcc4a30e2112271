-- reads: p.d.t
SET @@query_label = 'team:data';
SELECT * FROM d.t;
