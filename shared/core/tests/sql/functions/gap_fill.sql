-- reads: p.d.readings
SELECT * FROM GAP_FILL(TABLE d.readings, ts_column => 'ts', bucket_width => INTERVAL 1 MINUTE)
