-- reads: p.d.x
CREATE TEMP TABLE x AS SELECT 1 AS a;
SELECT * FROM x JOIN d.x USING (a);
