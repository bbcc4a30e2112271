-- reads: p.d.updates, p.d.blocked
-- writes: p.d.target
MERGE d.target T USING d.updates S ON T.id = S.id
WHEN MATCHED AND S.id NOT IN (SELECT id FROM d.blocked) THEN UPDATE SET v = S.v
