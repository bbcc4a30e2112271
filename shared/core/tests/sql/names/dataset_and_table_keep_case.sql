-- reads: p.Sales.DailyTotals
SELECT * FROM Sales.DailyTotals
