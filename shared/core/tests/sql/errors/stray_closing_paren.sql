-- error: 2:13 has no `(`
SELECT a + 1) FROM d.t
