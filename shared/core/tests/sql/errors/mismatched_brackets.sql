-- error: 2:13 needs `]`
SELECT [1, 2) FROM d.t
