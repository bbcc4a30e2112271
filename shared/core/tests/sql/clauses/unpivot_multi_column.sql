-- reads: p.sales.wide
SELECT * FROM sales.wide UNPIVOT((a, b) FOR pair IN ((a1, b1) AS 'one', (a2, b2) AS 'two'))
