-- reads: p.staging.customers, p.dw.dim_customer
-- writes: p.dw.dim_customer
MERGE dw.dim_customer AS d
USING (
  SELECT s.customer_id AS join_key, s.*
  FROM staging.customers AS s
  UNION ALL
  SELECT NULL AS join_key, s.*
  FROM staging.customers AS s
  JOIN dw.dim_customer AS cur
    ON cur.customer_id = s.customer_id AND cur.is_current
  WHERE cur.hash <> FARM_FINGERPRINT(TO_JSON_STRING(s))
) AS src
ON d.customer_id = src.join_key AND d.is_current
WHEN MATCHED AND d.hash <> FARM_FINGERPRINT(TO_JSON_STRING(src)) THEN
  UPDATE SET is_current = FALSE, valid_to = CURRENT_TIMESTAMP()
WHEN NOT MATCHED THEN
  INSERT (customer_id, name, hash, valid_from, valid_to, is_current)
  VALUES (src.customer_id, src.name, FARM_FINGERPRINT(TO_JSON_STRING(src)), CURRENT_TIMESTAMP(), NULL, TRUE)
