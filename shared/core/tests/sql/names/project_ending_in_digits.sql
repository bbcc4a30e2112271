-- reads: project-123.ds.t
SELECT * FROM project-123.ds.t
