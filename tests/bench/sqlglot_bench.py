"""sqlglot on the same corpus as Baton's SQL benchmark: parse (dialect bigquery) and list the
tables, minus CTE names. Prints each figure as `name: value unit`."""
import json
import sys
import time

import sqlglot
import sqlglot.parser
from sqlglot import exp

items = [json.loads(line) for line in open(sys.argv[1])]
statements = sum(i["statements"] for i in items)
size = sum(len(i["sql"]) for i in items)
failures = 0


def tables(sql):
    global failures
    found = set()
    try:
        for tree in sqlglot.parse(sql, dialect="bigquery"):
            if tree is None:
                continue
            ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
            for t in tree.find_all(exp.Table):
                if t.name not in ctes:
                    found.add(".".join(p for p in (t.catalog, t.db, t.name) if p))
    except Exception:
        failures += 1
    return found


for i in items[:50]:
    tables(i["sql"])
failures = 0
started = time.perf_counter()
for i in items:
    tables(i["sql"])
seconds = time.perf_counter() - started
print(f"sqlglot_version: {sqlglot.__version__}")
# sqlglot[c] installs mypyc-compiled modules beside the Python ones; they are imported first.
print(f"sqlglot_compiled_parser: {sqlglot.parser.__file__.endswith('.so')}")
print(f"sqlglot_statements_per_second: {statements / seconds:.0f} statements/s")
print(f"sqlglot_mb_per_second: {size / seconds / 1e6:.2f} MB/s")
print(f"sqlglot_failures: {failures} texts")
