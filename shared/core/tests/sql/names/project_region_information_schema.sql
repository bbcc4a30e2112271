-- reads: acme.region-us.INFORMATION_SCHEMA.JOBS
SELECT * FROM `acme`.`region-us`.INFORMATION_SCHEMA.JOBS
