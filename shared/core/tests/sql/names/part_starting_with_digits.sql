-- reads: foo.bar.25ab
SELECT * FROM foo.bar.25ab
