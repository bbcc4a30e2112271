-- reads: p.d.base
WITH Recent AS (SELECT * FROM d.base)
SELECT * FROM RECENT JOIN recent USING (id)
