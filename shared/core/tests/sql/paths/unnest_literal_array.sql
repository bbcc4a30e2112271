-- reads:
SELECT x FROM UNNEST([1, 2, 3]) AS x
