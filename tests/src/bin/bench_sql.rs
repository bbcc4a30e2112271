//! The SQL dependency benchmark (run it with `tests/bench/sql.sh`, which also runs sqlglot on
//! the same corpus and prints the ratio). Prints each figure as `name: value unit`.
//!
//!   bench_sql [--texts N] [--corpus-out FILE] [--catalog N] [--catalog-out DIR] [--layout]
//!
//! `--catalog-out DIR` writes the generated catalog as a folder (`baton.toml` and a `.sql`
//! file a table) and stops: `tests/bench/check.sh` times `baton check` over it.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use baton_core::catalog::apply::plan_apply;
use baton_core::catalog::{CatalogSpec, Frequency, Table, TableId};
use baton_core::dag;
use baton_core::sql::{Defaults, analyze};
use baton_tests::corpus::{Rng, corpus, query};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> anyhow::Result<()> {
    let texts: usize = arg("--texts").map_or(Ok(2000), |v| v.parse())?;
    let catalog_size: usize = arg("--catalog").map_or(Ok(10_000), |v| v.parse())?;
    let items = corpus(42, texts);
    if let Some(path) = arg("--corpus-out") {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for item in &items {
            writeln!(
                out,
                "{}",
                serde_json::json!({"sql": item.sql, "statements": item.statements})
            )?;
        }
    }
    let bytes: usize = items.iter().map(|i| i.sql.len()).sum();
    let statements: usize = items.iter().map(|i| i.statements).sum();
    println!("sql_corpus_texts: {} texts", items.len());
    println!("sql_corpus_statements: {statements} statements");
    println!("sql_corpus_mean_size: {} bytes", bytes / items.len());

    // One core: every text read in turn, after one warm-up pass.
    let defaults = Defaults::new("acme", "sales");
    let read_all = || {
        let mut tables = 0usize;
        for item in &items {
            tables += analyze(&item.sql, &defaults)
                .expect("the corpus reads")
                .reads
                .len();
        }
        tables
    };
    read_all();
    let rounds = 3;
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(read_all());
    }
    let seconds = started.elapsed().as_secs_f64() / f64::from(rounds);
    println!(
        "sql_statements_per_second: {:.0} statements/s",
        statements as f64 / seconds
    );
    println!(
        "sql_texts_per_second: {:.0} texts/s",
        items.len() as f64 / seconds
    );
    println!(
        "sql_mb_per_second: {:.1} MB/s",
        bytes as f64 / seconds / 1e6
    );

    // A catalog: each table reads up to three earlier ones and an external source.
    let mut rng = Rng::new(7);
    let tables: Vec<Table> = (0..catalog_size)
        .map(|i| {
            let mut sources: Vec<String> = (0..1 + rng.below(3))
                .filter(|_| i > 0)
                .map(|_| format!("ds{}.t{:05}", rng.below(20), rng.below(i.max(1))))
                .collect();
            sources.push(format!("raw.source_{}", rng.below(100)));
            let size = 1000 + rng.below(2000);
            let id = TableId::new(&format!("ds{}", i % 20), &format!("t{i:05}"))
                .expect("a valid table id");
            Table {
                frequency: Some("daily".into()),
                ..Table::query(&id, &query(&mut rng, &sources, size))
            }
        })
        .collect();
    // Table i reads `dsK.tJ` for J < i, but only `ds{J % 20}.tJ` exists: fix the datasets.
    let tables: Vec<Table> = tables
        .into_iter()
        .map(|mut t| {
            let mut sql = t.sql.clone();
            for k in 0..20 {
                sql = sql.replace(&format!("ds{k}.t"), "dsX.t");
            }
            t.sql = fix_datasets(&sql);
            t
        })
        .collect();
    let catalog_bytes: usize = tables.iter().map(|t| t.sql.len()).sum();
    let spec = CatalogSpec {
        frequencies: vec![Frequency::every("daily", 86_400)],
        tables,
    };
    if let Some(dir) = arg("--catalog-out") {
        let dir = std::path::Path::new(&dir);
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("baton.toml"),
            "[frequencies.daily]\nevery = \"24h\"\n",
        )?;
        for table in &spec.tables {
            let folder = dir.join(&table.dataset);
            std::fs::create_dir_all(&folder)?;
            std::fs::write(
                folder.join(format!("{}.sql", table.name)),
                format!("-- frequency: daily\n{}\n", table.sql),
            )?;
        }
        println!(
            "catalog_written: {} tables, {:.1} MB",
            spec.tables.len(),
            catalog_bytes as f64 / 1e6
        );
        return Ok(());
    }
    println!("catalog_tables: {} tables", spec.tables.len());
    println!("catalog_sql: {:.1} MB", catalog_bytes as f64 / 1e6);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("catalog_cores: {cores} cores");
    let started = Instant::now();
    let plan = plan_apply(&[], &[], &spec, false, "acme", jiff::Timestamp::now())
        .map_err(|p| anyhow::anyhow!("{:?}", &p[..p.len().min(3)]))?;
    let inferred = started.elapsed();
    let parents: BTreeMap<_, _> = plan.dependencies.clone();
    let planning = Instant::now();
    let jobs = dag::plan(&parents).map_err(|c| anyhow::anyhow!("{c}"))?;
    let planned = planning.elapsed();
    let edges: usize = parents.values().map(Vec::len).sum();
    println!("catalog_edges: {edges} dependencies");
    println!("catalog_infer: {:.0} ms", inferred.as_secs_f64() * 1e3);
    println!("dag_order_10k: {:.1} ms", planned.as_secs_f64() * 1e3);
    println!(
        "catalog_infer_and_plan: {:.0} ms",
        (inferred + planned).as_secs_f64() * 1e3
    );
    assert_eq!(jobs.len(), spec.tables.len());
    if std::env::args().any(|a| a == "--layout") {
        // `baton graph --format svg`'s own work: the graph and its layout, no I/O.
        let started = Instant::now();
        let svg = baton_core::graph::Graph::of_catalog(&parents).svg();
        println!(
            "graph_layout_svg: {:.0} ms ({} tables, {edges} dependencies, {} KB of SVG)",
            started.elapsed().as_secs_f64() * 1e3,
            parents.len(),
            svg.len() / 1024
        );
    }
    Ok(())
}

/// `dsX.tJ` becomes `ds{J % 20}.tJ`, the dataset where table J lives.
fn fix_datasets(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find("dsX.t") {
        out.push_str(&rest[..at]);
        let digits: String = rest[at + 5..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let j: usize = digits.parse().unwrap_or(0);
        out.push_str(&format!("ds{}.t{digits}", j % 20));
        rest = &rest[at + 5 + digits.len()..];
    }
    out.push_str(rest);
    out
}
