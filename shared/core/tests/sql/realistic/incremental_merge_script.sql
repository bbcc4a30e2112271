-- reads: p.raw.orders, p.mart.orders
-- writes: p.mart.orders
DECLARE watermark TIMESTAMP DEFAULT (
  SELECT COALESCE(MAX(updated_at), TIMESTAMP '1970-01-01') FROM mart.orders
);
CREATE TEMP TABLE changed AS
SELECT * EXCEPT (rn)
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY updated_at DESC) AS rn
  FROM raw.orders
  WHERE updated_at > watermark
)
WHERE rn = 1;
MERGE mart.orders AS t
USING changed AS s
ON t.order_id = s.order_id
WHEN MATCHED AND s.is_deleted THEN DELETE
WHEN MATCHED THEN UPDATE SET status = s.status, amount = s.amount, updated_at = s.updated_at
WHEN NOT MATCHED AND NOT s.is_deleted THEN INSERT ROW;
