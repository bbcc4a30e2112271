-- reads: p.sales.quarterly
SELECT * FROM (SELECT product, quarter, amount FROM sales.quarterly)
PIVOT(SUM(amount) FOR quarter IN ('Q1' AS q1, 'Q2' AS q2))
