-- reads: p.sales.orders, p.sales.by_region
-- writes: p.sales.by_region, p.sales.v_emea
CREATE OR REPLACE TABLE FUNCTION sales.by_region(r STRING) AS
SELECT * FROM sales.orders WHERE region = r;

CREATE OR REPLACE TABLE sales.by_region AS
SELECT * FROM sales.by_region('emea');

CREATE OR REPLACE VIEW sales.v_emea AS
SELECT * FROM sales.by_region;
