-- reads: p.d.a
SELECT JSON_VALUE('{"from": "d.x"}', '$.from') FROM d.a
