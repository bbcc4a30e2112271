-- reads: p.d.src
-- writes: p.d.dst
-- lenient: true
UPSERT INTO d.dst SELECT * FROM d.src
