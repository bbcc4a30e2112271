-- reads: p.d.raw
-- writes: p.d.target
MERGE d.target T
USING (WITH x AS (SELECT * FROM d.raw) SELECT * FROM x) S
ON T.id = S.id
WHEN NOT MATCHED THEN INSERT ROW
