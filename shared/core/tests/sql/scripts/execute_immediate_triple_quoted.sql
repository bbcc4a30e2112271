-- reads: p.d.t
-- writes: p.d.u
EXECUTE IMMEDIATE '''
  INSERT INTO d.u SELECT * FROM d.t
''';
