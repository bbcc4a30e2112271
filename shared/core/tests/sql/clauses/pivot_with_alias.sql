-- reads: p.sales.quarterly
SELECT * FROM sales.quarterly PIVOT(SUM(amount) AS total FOR quarter IN ('Q1', 'Q2')) AS pv
