-- reads: p.stage.daily_load
-- writes: p.mart.daily, p.stage.daily_load
BEGIN TRANSACTION;
DELETE FROM mart.daily WHERE day = @run_date;
INSERT INTO mart.daily SELECT * FROM stage.daily_load WHERE day = @run_date;
TRUNCATE TABLE stage.daily_load;
COMMIT TRANSACTION;
