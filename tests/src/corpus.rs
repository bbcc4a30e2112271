//! A realistic, deterministic corpus of BigQuery SQL for benchmarks: queries of 1 to 3 KB with
//! CTEs, joins, window functions, subqueries and set operations, and scripts (DECLARE, temp
//! tables, MERGE). The same seed gives the same corpus.

use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded generator whose stream does not change between versions (ChaCha8).
#[derive(Debug, Clone)]
pub struct Rng(ChaCha8Rng);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(ChaCha8Rng::seed_from_u64(seed))
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0.random_range(0..n)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// One text of the corpus and how many statements it holds.
#[derive(Debug, Clone)]
pub struct Item {
    pub sql: String,
    pub statements: usize,
}

const COLUMNS: &[&str] = &[
    "customer_id",
    "order_id",
    "amount",
    "created_at",
    "status",
    "country",
    "segment",
    "product_id",
    "quantity",
    "price",
    "currency",
    "updated_at",
    "channel",
    "region",
];
const EXPRESSIONS: &[&str] = &[
    "SAFE_DIVIDE(SUM(amount), COUNT(*))",
    "COALESCE(segment, 'unknown')",
    "DATE_TRUNC(DATE(created_at), MONTH)",
    "CASE WHEN amount > 1000 THEN 'high' WHEN amount > 100 THEN 'mid' ELSE 'low' END",
    "TIMESTAMP_DIFF(updated_at, created_at, HOUR)",
    "APPROX_COUNT_DISTINCT(customer_id)",
    "ARRAY_AGG(product_id IGNORE NULLS ORDER BY created_at LIMIT 5)",
    "IF(status IN ('paid', 'shipped'), amount, 0)",
    "FORMAT_DATE('%Y-%m', DATE(created_at))",
    "ROUND(price * quantity * (1 - 0.2), 2)",
];
const WINDOWS: &[&str] = &[
    "ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY created_at DESC)",
    "SUM(amount) OVER (PARTITION BY country ORDER BY created_at ROWS BETWEEN 6 PRECEDING AND CURRENT ROW)",
    "LAG(amount) OVER (PARTITION BY customer_id ORDER BY created_at)",
    "RANK() OVER (PARTITION BY region ORDER BY amount DESC)",
];

/// A table name in one of the spellings production SQL uses.
fn table(rng: &mut Rng, tables: &[String]) -> String {
    let name = rng.pick(tables).clone();
    match rng.below(4) {
        0 => format!("`acme-prod.{name}`"),
        1 => format!("`{name}`"),
        _ => name,
    }
}

fn select(rng: &mut Rng, from: &str, tables: &[String], budget: usize) -> String {
    let mut sql = String::from("SELECT\n");
    let columns = 3 + rng.below(6);
    for i in 0..columns {
        let expr = if rng.below(3) == 0 {
            rng.pick(EXPRESSIONS).to_string()
        } else {
            format!("t.{}", rng.pick(COLUMNS))
        };
        sql.push_str(&format!("  {expr} AS c{i},\n"));
    }
    sql.push_str(&format!("  {} AS w\n", rng.pick(WINDOWS)));
    sql.push_str(&format!("FROM {from} AS t\n"));
    for j in 0..rng.below(3) {
        let joined = table(rng, tables);
        let kind = rng.pick(&["JOIN", "LEFT JOIN", "INNER JOIN"]);
        sql.push_str(&format!(
            "{kind} {joined} AS j{j} ON j{j}.{col} = t.{col}\n",
            col = rng.pick(COLUMNS)
        ));
    }
    sql.push_str(&format!(
        "WHERE t.created_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL {} DAY)\n  AND t.status IN ('paid', 'shipped', 'delivered')\n",
        1 + rng.below(90)
    ));
    if rng.below(3) == 0 && sql.len() < budget {
        sql.push_str(&format!(
            "  AND t.customer_id IN (SELECT customer_id FROM {} WHERE active)\n",
            table(rng, tables)
        ));
    }
    if rng.below(2) == 0 {
        sql.push_str("QUALIFY w <= 10\n");
    }
    sql
}

/// A query of about `size` bytes reading from `tables`.
pub fn query(rng: &mut Rng, tables: &[String], size: usize) -> String {
    let mut ctes = Vec::new();
    let mut sql = String::from("-- generated for the benchmark\nWITH ");
    let mut n = 0;
    while sql.len() < size.saturating_sub(900) || n == 0 {
        let from = if n > 0 && rng.below(2) == 0 {
            format!("cte{}", rng.below(n))
        } else {
            table(rng, tables)
        };
        if n > 0 {
            sql.push_str(",\n");
        }
        sql.push_str(&format!(
            "cte{n} AS (\n{})",
            select(rng, &from, tables, size)
        ));
        ctes.push(n);
        n += 1;
    }
    sql.push('\n');
    let last = format!("cte{}", n - 1);
    sql.push_str(&select(rng, &last, tables, size));
    if rng.below(3) == 0 {
        sql.push_str(&format!("UNION ALL\n{}", select(rng, "cte0", tables, size)));
    }
    sql.push_str("ORDER BY 1\n");
    sql
}

/// A script: a watermark, a temp table, a MERGE.
pub fn script(rng: &mut Rng, tables: &[String], size: usize) -> String {
    let target = rng.pick(tables).clone();
    let body = query(rng, tables, size.saturating_sub(600));
    format!(
        "DECLARE watermark TIMESTAMP DEFAULT (SELECT COALESCE(MAX(updated_at), TIMESTAMP '1970-01-01') FROM {target});\n\
         CREATE TEMP TABLE changed AS\n{body};\n\
         MERGE {target} AS t\nUSING changed AS s\nON t.order_id = s.c0\n\
         WHEN MATCHED THEN UPDATE SET amount = s.c1, updated_at = CURRENT_TIMESTAMP()\n\
         WHEN NOT MATCHED THEN INSERT ROW;\n"
    )
}

/// `count` texts, one in six a script, sizes spread over 1 to 3 KB.
pub fn corpus(seed: u64, count: usize) -> Vec<Item> {
    let mut rng = Rng::new(seed);
    let tables: Vec<String> = (0..200)
        .map(|i| {
            format!(
                "{}.{}_{i}",
                ["sales", "crm", "web", "finance"][i % 4],
                ["orders", "customers", "events", "ledger"][(i / 4) % 4]
            )
        })
        .collect();
    (0..count)
        .map(|_| {
            let size = 1000 + rng.below(2000);
            if rng.below(6) == 0 {
                Item {
                    sql: script(&mut rng, &tables, size),
                    statements: 3,
                }
            } else {
                Item {
                    sql: query(&mut rng, &tables, size),
                    statements: 1,
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_is_deterministic_and_sized() {
        let a = corpus(7, 50);
        let b = corpus(7, 50);
        assert_eq!(
            a.iter().map(|i| &i.sql).collect::<Vec<_>>(),
            b.iter().map(|i| &i.sql).collect::<Vec<_>>()
        );
        let sizes: Vec<usize> = a.iter().map(|i| i.sql.len()).collect();
        assert!(sizes.iter().all(|&s| (800..4500).contains(&s)), "{sizes:?}");
    }

    #[test]
    fn every_text_reads_without_error_or_leniency() {
        for item in corpus(11, 200) {
            let a = baton_core::sql::analyze(&item.sql, &baton_core::sql::Defaults::new("p", "d"))
                .unwrap_or_else(|e| panic!("{e}\n{}", item.sql));
            assert!(!a.lenient, "{}", item.sql);
            assert!(!a.reads.is_empty());
        }
    }
}
