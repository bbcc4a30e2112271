-- reads: p.d.a
	SELECT	*

	FROM	d.a
