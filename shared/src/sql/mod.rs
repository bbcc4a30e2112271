//! Which tables a BigQuery SQL text reads: the source of every dependency in Baton.
//!
//! Pure: a text and default names in, sorted names or an error with line and column out.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use sqlparser::ast::{ObjectName, Query, Visit, Visitor};
use sqlparser::dialect::BigQueryDialect;
use sqlparser::parser::{Parser, ParserError};

/// Deep enough for generated SQL (24 nested subqueries fail at sqlparser's default of 50),
/// shallow enough that the parser's own recursion stays well within a thread's stack.
const RECURSION_LIMIT: usize = 200;

/// The project and dataset that qualify names written with fewer parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Defaults {
    pub project: String,
    pub dataset: String,
}

/// What a SQL text reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analysis {
    /// Tables read, dotted and without backticks: `project.dataset.table` when defaults were
    /// given, else as written.
    pub reads: BTreeSet<String>,
}

/// SQL that cannot be read, with the place to look.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlError {
    /// 1-based; 0 when the parser did not say.
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "line {}, column {}: {}",
                self.line, self.column, self.message
            )
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for SqlError {}

impl SqlError {
    fn from_parser(error: ParserError, sql: &str) -> Self {
        let text = match error {
            ParserError::TokenizerError(s) | ParserError::ParserError(s) => s,
            ParserError::RecursionLimitExceeded => {
                return Self {
                    line: 0,
                    column: 0,
                    message: format!("the SQL nests deeper than {RECURSION_LIMIT} levels"),
                };
            }
        };
        // sqlparser ends its messages with " at Line: L, Column: C".
        if let Some((message, place)) = text.rsplit_once(" at Line: ")
            && let Some((line, column)) = place.split_once(", Column: ")
            && let (Ok(line), Ok(column)) = (line.trim().parse(), column.trim().parse())
        {
            return Self {
                line,
                column,
                message: message.to_string(),
            };
        }
        // At the end of the input sqlparser gives no place: the end of the text is the place.
        if text.ends_with("found: EOF") {
            let line = sql.lines().count().max(1);
            let column = sql.lines().last().map_or(0, |l| l.chars().count()) + 1;
            return Self {
                line: line as u64,
                column: column as u64,
                message: text,
            };
        }
        Self {
            line: 0,
            column: 0,
            message: text,
        }
    }
}

/// The tables `sql` reads.
pub fn analyze(sql: &str, defaults: Option<&Defaults>) -> Result<Analysis, SqlError> {
    let statements = Parser::new(&BigQueryDialect {})
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| SqlError::from_parser(e, sql))?;
    let mut collector = Collector {
        ctes: Vec::new(),
        reads: BTreeSet::new(),
        defaults,
    };
    let _ = statements.visit(&mut collector);
    Ok(Analysis {
        reads: collector.reads,
    })
}

struct Collector<'a> {
    /// The CTE names in scope, innermost query last.
    ctes: Vec<Vec<String>>,
    reads: BTreeSet<String>,
    defaults: Option<&'a Defaults>,
}

impl Visitor for Collector<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        let names = query
            .with
            .iter()
            .flat_map(|w| &w.cte_tables)
            .map(|cte| cte.alias.name.value.clone())
            .collect();
        self.ctes.push(names);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.ctes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        let parts = name_parts(relation);
        let is_cte = parts.len() == 1 && self.ctes.iter().flatten().any(|c| c == &parts[0]);
        if !is_cte && !parts.is_empty() {
            self.reads.insert(qualify(&parts, self.defaults));
        }
        ControlFlow::Continue(())
    }
}

/// The dotted parts of a name, with one backticked `p.d.t` split like `p`.`d`.`t`.
fn name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .filter_map(|part| part.as_ident())
        .flat_map(|ident| {
            ident
                .value
                .split('.')
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn qualify(parts: &[String], defaults: Option<&Defaults>) -> String {
    match (parts.len(), defaults) {
        (1, Some(d)) => format!("{}.{}.{}", d.project, d.dataset, parts[0]),
        (2, Some(d)) => format!("{}.{}.{}", d.project, parts[0], parts[1]),
        _ => parts.join("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(sql: &str) -> Vec<String> {
        let d = Defaults {
            project: "p".into(),
            dataset: "d".into(),
        };
        analyze(sql, Some(&d)).unwrap().reads.into_iter().collect()
    }

    #[test]
    fn names_are_qualified_with_the_defaults() {
        assert_eq!(
            reads("SELECT * FROM t JOIN other.u USING (id) JOIN `x-proj.ds.v` USING (id)"),
            ["p.d.t", "p.other.u", "x-proj.ds.v"]
        );
    }

    #[test]
    fn ctes_are_not_tables() {
        assert_eq!(
            reads("WITH a AS (SELECT * FROM shop.orders), b AS (SELECT * FROM a) SELECT * FROM b"),
            ["p.shop.orders"]
        );
    }

    #[test]
    fn errors_name_line_and_column() {
        let err = analyze("SELECT *\nFROM t\nWHERE a = = 1", None).unwrap_err();
        assert_eq!((err.line, err.column), (3, 11), "{err}");
        assert!(err.to_string().starts_with("line 3, column 11: "), "{err}");
        let err = analyze("SELECT *\nFROM t\nWHERE (", None).unwrap_err();
        assert_eq!((err.line, err.column), (3, 8), "{err}");
    }
}
