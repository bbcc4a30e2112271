-- reads: p.d.t
SELECT * FROM APPENDS(TABLE d.t, NULL, NULL)
