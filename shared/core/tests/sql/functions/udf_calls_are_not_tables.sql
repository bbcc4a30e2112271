-- reads: p.d.t
SELECT d.normalise(name), `acme.fns.clean`(x), fns.f(y) FROM d.t
