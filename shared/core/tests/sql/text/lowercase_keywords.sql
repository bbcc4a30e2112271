-- reads: p.d.a, p.d.b
select * from d.a join d.b using (id) where true
