-- reads: p.d.updates
-- writes: p.d.target
MERGE d.target T
USING d.updates S
ON T.id = S.id
WHEN MATCHED THEN UPDATE SET value = S.value
WHEN NOT MATCHED THEN INSERT (id, value) VALUES (S.id, S.value)
