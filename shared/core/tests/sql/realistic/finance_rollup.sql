-- reads: p.finance.ledger, p.finance.accounts, p.ref.fx_rates
WITH ledger AS (
  SELECT l.*, a.category, a.region
  FROM finance.ledger AS l
  JOIN finance.accounts AS a USING (account_id)
  WHERE l.posted_on >= DATE_TRUNC(CURRENT_DATE(), YEAR)
),
converted AS (
  SELECT ledger.*, amount * fx.rate AS amount_eur
  FROM ledger
  LEFT JOIN ref.fx_rates AS fx
    ON fx.currency = ledger.currency AND fx.day = ledger.posted_on
),
monthly AS (
  SELECT DATE_TRUNC(posted_on, MONTH) AS month, region, category, SUM(amount_eur) AS total
  FROM converted
  GROUP BY ALL
)
SELECT *
FROM monthly
PIVOT (SUM(total) FOR category IN ('revenue', 'cogs', 'opex'))
ORDER BY month, region
