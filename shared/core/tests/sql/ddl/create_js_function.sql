-- reads: p.d.t
CREATE TEMP FUNCTION js_upper(s STRING) RETURNS STRING LANGUAGE js AS r'''
  return s.toUpperCase(); // FROM d.not_a_table
''';
SELECT js_upper(name) FROM d.t
