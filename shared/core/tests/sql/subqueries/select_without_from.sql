-- reads:
SELECT 1 AS one, 'two' AS two, CURRENT_DATE() AS today
