-- reads: p.hr.employees
SELECT e.name, m.name FROM hr.employees AS e LEFT JOIN hr.employees AS m ON e.manager_id = m.id
