-- frequency: daily
-- description: The days of January 2026, depending on nothing
SELECT day
FROM UNNEST(GENERATE_DATE_ARRAY('2026-01-01', '2026-01-31')) AS day
