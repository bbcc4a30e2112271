-- reads:
-- unknowable: 1
DECLARE tbl STRING DEFAULT 'd.t';
EXECUTE IMMEDIATE CONCAT('SELECT * FROM ', tbl);
