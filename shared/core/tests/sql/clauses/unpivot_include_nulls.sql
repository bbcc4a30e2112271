-- reads: p.sales.wide
SELECT * FROM sales.wide UNPIVOT INCLUDE NULLS (amount FOR quarter IN (q1, q2)) AS u
