-- reads: p.d.src
-- writes: p.d.empty
CREATE TABLE d.empty LIKE d.src
