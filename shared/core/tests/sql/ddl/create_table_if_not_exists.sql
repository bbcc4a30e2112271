-- reads:
-- writes: p.d.out
CREATE TABLE IF NOT EXISTS d.out (id INT64 NOT NULL, name STRING, ts TIMESTAMP) PARTITION BY DATE(ts)
