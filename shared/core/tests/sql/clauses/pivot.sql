-- reads: p.sales.quarterly
SELECT * FROM sales.quarterly
PIVOT(SUM(amount) FOR quarter IN ('Q1', 'Q2', 'Q3', 'Q4'))
