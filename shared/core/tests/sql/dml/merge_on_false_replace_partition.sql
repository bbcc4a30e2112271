-- reads: p.d.staging
-- writes: p.d.target
MERGE d.target T USING d.staging S ON FALSE
WHEN NOT MATCHED BY SOURCE AND T.day = '2026-01-01' THEN DELETE
WHEN NOT MATCHED THEN INSERT ROW
