-- reads: p.hr.employees
WITH RECURSIVE chain AS (
  SELECT id, manager_id, 0 AS depth FROM hr.employees WHERE manager_id IS NULL
  UNION ALL
  SELECT e.id, e.manager_id, chain.depth + 1
  FROM hr.employees AS e JOIN chain ON e.manager_id = chain.id
)
SELECT * FROM chain
