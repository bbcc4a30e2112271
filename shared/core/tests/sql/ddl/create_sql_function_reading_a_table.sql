-- reads: p.d.rates
CREATE FUNCTION d.to_eur(amount FLOAT64, ccy STRING) AS (
  amount * (SELECT rate FROM d.rates WHERE code = ccy)
)
