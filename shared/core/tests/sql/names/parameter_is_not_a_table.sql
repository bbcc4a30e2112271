-- reads: p.d.t
SELECT * FROM d.t WHERE day = @run_date AND x = @@dataset_id
