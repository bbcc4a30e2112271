-- reads: p.d.staging
-- writes: p.d.target, p.d.staging
BEGIN TRANSACTION;
INSERT INTO d.target SELECT * FROM d.staging;
DELETE FROM d.staging WHERE TRUE;
COMMIT TRANSACTION;
