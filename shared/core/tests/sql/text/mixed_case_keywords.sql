-- reads: p.d.a, p.d.b
SeLeCt * FrOm d.a UnIoN aLl select * FROM d.b
