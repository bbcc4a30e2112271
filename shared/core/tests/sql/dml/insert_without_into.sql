-- reads: p.d.src
-- writes: p.d.dst
INSERT d.dst (a) SELECT x FROM d.src
