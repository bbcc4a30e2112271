-- reads: p.logs.INFORMATION_SCHEMA.PARTITIONS
-- unknowable: 1
FOR p IN (
  SELECT table_name, partition_id
  FROM logs.INFORMATION_SCHEMA.PARTITIONS
  WHERE partition_id < FORMAT_DATE('%Y%m%d', DATE_SUB(CURRENT_DATE(), INTERVAL 400 DAY))
    AND partition_id NOT IN ('__NULL__', '__UNPARTITIONED__')
)
DO
  EXECUTE IMMEDIATE FORMAT(
    'DELETE FROM logs.%s WHERE DATE(_PARTITIONTIME) = PARSE_DATE("%%Y%%m%%d", "%s")',
    p.table_name, p.partition_id
  );
END FOR;
