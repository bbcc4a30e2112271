-- reads: p.sales.wide
SELECT * FROM sales.wide UNPIVOT(amount FOR quarter IN (q1, q2, q3, q4))
