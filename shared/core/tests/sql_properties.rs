//! Properties of the dependency reader:
//! - any input, however broken, returns an answer or an error: no panic, no hang, no stack
//!   overflow (deep nesting is refused with an error);
//! - on generated queries whose real tables are known by construction (CTEs, aliases,
//!   correlated paths, UNNEST, derived tables, subqueries, set operations), it finds exactly
//!   those tables; and sqlparser's full parser, used as an oracle, accepts each generated
//!   query and sees every table the reader reports.

use std::collections::BTreeSet;

use proptest::prelude::*;
use sqlparser::ast::visit_relations;
use sqlparser::dialect::BigQueryDialect;
use sqlparser::parser::Parser;

use baton_core::sql::{Defaults, MAX_DEPTH, analyze};

fn defaults() -> Defaults {
    Defaults::new("p", "d")
}

// ---------------------------------------------------------------------------------------------
// Robustness

const WORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "WITH",
    "AS",
    "JOIN",
    "ON",
    "USING",
    "UNION",
    "ALL",
    "(",
    ")",
    ",",
    ";",
    ".",
    "*",
    "d.t",
    "`p.d.t`",
    "t",
    "x",
    "UNNEST",
    "'s'",
    "1",
    "IF",
    "THEN",
    "END",
    "BEGIN",
    "CASE",
    "WHEN",
    "INSERT",
    "INTO",
    "MERGE",
    "CREATE",
    "TABLE",
    "TEMP",
    "MODEL",
    "EXECUTE",
    "IMMEDIATE",
    "|>",
    "[",
    "]",
    "FOR",
    "SYSTEM_TIME",
    "OF",
    "LOOP",
    "WHILE",
    "DO",
    "PIVOT",
    "QUALIFY",
    "--c\n",
    "/*c*/",
    "EXCEPT",
    "DISTINCT",
    "LEFT",
    "CROSS",
    "=",
    "-",
    "region-us",
    "INFORMATION_SCHEMA",
    "events_*",
    "CALL",
    "DECLARE",
    "SET",
    "OFFSET",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        let _ = analyze(&text, &defaults());
    }

    #[test]
    fn token_soup_never_panics(words in proptest::collection::vec(proptest::sample::select(WORDS), 0..120)) {
        let text = words.join(" ");
        if let Err(e) = analyze(&text, &defaults()) {
            prop_assert!(e.line >= 1 && e.column >= 1, "{e}");
        }
    }
}

#[test]
fn extreme_nesting_is_refused_not_overflowed() {
    // 100 000 brackets deep: the reader steps into expression brackets without recursing.
    let deep = format!(
        "SELECT {}1{} FROM d.t",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    assert_eq!(
        analyze(&deep, &defaults()).unwrap().reads,
        BTreeSet::from(["p.d.t".to_string()])
    );
    // Queries nest by recursion: refused past the limit, read below it.
    let nested = |n: usize| {
        format!(
            "{}SELECT * FROM d.t{}",
            "(SELECT * FROM ".repeat(n),
            ")".repeat(n)
        )
    };
    let err = analyze(&nested(MAX_DEPTH + 10), &defaults()).unwrap_err();
    assert!(err.message.contains("deeper than"), "{err}");
    let ok = analyze(&nested(MAX_DEPTH - 2), &defaults()).unwrap();
    assert_eq!(ok.reads.len(), 1);
    // Joins nest by recursion too.
    let joins = format!(
        "SELECT * FROM {}d.t{}",
        "(".repeat(MAX_DEPTH + 10),
        ")".repeat(MAX_DEPTH + 10)
    );
    assert!(analyze(&joins, &defaults()).is_err());
}

// ---------------------------------------------------------------------------------------------
// Generated queries with known tables

/// A query, rendered as SQL, with the real tables it reads (qualified with p.d).
#[derive(Clone, Debug)]
struct Generated {
    sql: String,
    tables: BTreeSet<String>,
}

/// Real tables: dataset-qualified or bare (then in the default dataset `d`).
fn real_table() -> impl Strategy<Value = (String, String)> {
    (0u8..6, 0u8..3, any::<bool>()).prop_map(|(t, ds, bare)| {
        if bare {
            (format!("real{t}"), format!("p.d.real{t}"))
        } else {
            (format!("ds{ds}.real{t}"), format!("p.ds{ds}.real{t}"))
        }
    })
}

#[derive(Clone, Debug)]
enum Item {
    Table(String, String),
    Cte(usize),
    Path(usize),
    Unnest(usize),
    Derived(Box<Shape>),
}

#[derive(Clone, Debug)]
struct Select {
    items: Vec<Item>,
    joins_with_comma: Vec<bool>,
    filter: Option<Box<Shape>>,
    scalar: Option<Box<Shape>>,
}

#[derive(Clone, Debug)]
struct Shape {
    ctes: Vec<Shape>,
    selects: Vec<Select>,
}

fn item(depth: u32) -> BoxedStrategy<Item> {
    let leaf = prop_oneof![
        4 => real_table().prop_map(|(w, q)| Item::Table(w, q)),
        2 => (0usize..4).prop_map(Item::Cte),
        1 => (0usize..4).prop_map(Item::Path),
        1 => (0usize..4).prop_map(Item::Unnest),
    ];
    if depth == 0 {
        leaf.boxed()
    } else {
        prop_oneof![4 => leaf, 1 => shape(depth - 1).prop_map(|s| Item::Derived(Box::new(s)))]
            .boxed()
    }
}

fn select(depth: u32) -> BoxedStrategy<Select> {
    (
        proptest::collection::vec(item(depth), 1..4),
        proptest::collection::vec(any::<bool>(), 3),
        proptest::option::weighted(0.3, shape(depth.saturating_sub(1))),
        proptest::option::weighted(0.3, shape(depth.saturating_sub(1))),
    )
        .prop_map(|(items, joins_with_comma, filter, scalar)| Select {
            items,
            joins_with_comma,
            filter: filter.map(Box::new),
            scalar: scalar.map(Box::new),
        })
        .boxed()
}

fn shape(depth: u32) -> BoxedStrategy<Shape> {
    if depth == 0 {
        return proptest::collection::vec(
            real_table().prop_map(|(w, q)| Select {
                items: vec![Item::Table(w, q)],
                joins_with_comma: vec![],
                filter: None,
                scalar: None,
            }),
            1..3,
        )
        .prop_map(|selects| Shape {
            ctes: vec![],
            selects,
        })
        .boxed();
    }
    (
        proptest::collection::vec(shape(depth - 1), 0..3),
        proptest::collection::vec(select(depth), 1..3),
    )
        .prop_map(|(ctes, selects)| Shape { ctes, selects })
        .boxed()
}

/// Renders a shape. `ctes_in_scope` names the CTEs visible; an item that asks for a CTE or a
/// path without one in scope becomes a real table, so every name's meaning is known.
fn render(
    shape: &Shape,
    ctes_in_scope: &mut Vec<String>,
    tables: &mut BTreeSet<String>,
    counter: &mut usize,
) -> String {
    let mut sql = String::new();
    let outer_ctes = ctes_in_scope.len();
    if !shape.ctes.is_empty() {
        sql.push_str("WITH ");
        for (i, cte) in shape.ctes.iter().enumerate() {
            *counter += 1;
            let name = format!("cte{counter}");
            let body = render(cte, ctes_in_scope, tables, counter);
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("{name} AS ({body})"));
            ctes_in_scope.push(name);
        }
        sql.push(' ');
    }
    let mut parts = Vec::new();
    for select in &shape.selects {
        parts.push(render_select(select, ctes_in_scope, tables, counter));
    }
    sql.push_str(&parts.join(" UNION ALL "));
    ctes_in_scope.truncate(outer_ctes);
    sql
}

fn render_select(
    select: &Select,
    ctes: &[String],
    tables: &mut BTreeSet<String>,
    counter: &mut usize,
) -> String {
    let mut aliases: Vec<String> = Vec::new();
    let mut from = String::new();
    for (i, item) in select.items.iter().enumerate() {
        *counter += 1;
        let alias = format!("a{counter}");
        let text = match item {
            Item::Table(written, qualified) => {
                tables.insert(qualified.clone());
                format!("{written} AS {alias}")
            }
            Item::Cte(k) if !ctes.is_empty() => format!("{} AS {alias}", ctes[k % ctes.len()]),
            Item::Path(k) | Item::Unnest(k) if !aliases.is_empty() => {
                let base = &aliases[k % aliases.len()];
                match item {
                    Item::Path(_) => format!("{base}.arr AS {alias}"),
                    _ => format!("UNNEST({base}.arr) AS {alias}"),
                }
            }
            Item::Derived(shape) => {
                let mut scope = ctes.to_vec();
                format!(
                    "({}) AS {alias}",
                    render(shape, &mut scope, tables, counter)
                )
            }
            _ => {
                tables.insert("p.d.fallback".into());
                format!("fallback AS {alias}")
            }
        };
        if i == 0 {
            from.push_str(&text);
        } else if select.joins_with_comma.get(i - 1).copied().unwrap_or(true) {
            from.push_str(&format!(", {text}"));
        } else {
            from.push_str(&format!(" JOIN {text} ON TRUE"));
        }
        aliases.push(alias);
    }
    let scalar = match &select.scalar {
        Some(s) => {
            let mut scope = ctes.to_vec();
            format!(", ({}) AS s", render_scalar(s, &mut scope, tables, counter))
        }
        None => String::new(),
    };
    let filter = match &select.filter {
        Some(s) => {
            let mut scope = ctes.to_vec();
            format!(" WHERE EXISTS ({})", render(s, &mut scope, tables, counter))
        }
        None => String::new(),
    };
    format!("SELECT 1 AS one{scalar} FROM {from}{filter}")
}

fn render_scalar(
    shape: &Shape,
    ctes: &mut Vec<String>,
    tables: &mut BTreeSet<String>,
    counter: &mut usize,
) -> String {
    format!(
        "SELECT COUNT(*) FROM ({})",
        render(shape, ctes, tables, counter)
    )
}

fn generated() -> impl Strategy<Value = Generated> {
    shape(3).prop_map(|s| {
        let mut tables = BTreeSet::new();
        let mut counter = 0;
        let sql = render(&s, &mut Vec::new(), &mut tables, &mut counter);
        Generated { sql, tables }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn generated_queries_read_exactly_their_tables(g in generated()) {
        let analysis = analyze(&g.sql, &defaults()).map_err(|e| TestCaseError::fail(format!("{e}\n{}", g.sql)))?;
        prop_assert!(!analysis.lenient, "lenient on {}", g.sql);
        prop_assert_eq!(&analysis.reads, &g.tables, "{}", g.sql);
        prop_assert!(analysis.writes.is_empty());

        // The oracle: sqlparser parses it, and names every table the reader found.
        let statements = Parser::new(&BigQueryDialect {})
            .with_recursion_limit(500)
            .try_with_sql(&g.sql)
            .and_then(|mut p| p.parse_statements())
            .map_err(|e| TestCaseError::fail(format!("sqlparser refuses {}: {e}", g.sql)))?;
        let mut seen = BTreeSet::new();
        let _ = visit_relations(&statements, |name| {
            let parts: Vec<String> = name.0.iter().map(|p| p.to_string()).collect();
            let qualified = match parts.len() {
                1 => format!("p.d.{}", parts[0]),
                2 => format!("p.{}.{}", parts[0], parts[1]),
                _ => parts.join("."),
            };
            seen.insert(qualified);
            std::ops::ControlFlow::<()>::Continue(())
        });
        for table in &analysis.reads {
            prop_assert!(seen.contains(table), "sqlparser does not see {table} in {}", g.sql);
        }
    }
}
