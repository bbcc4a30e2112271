-- reads: p.d.src
-- writes: p.d.copy
CREATE TABLE d.copy CLONE d.src
