//! Which tables a BigQuery SQL text reads and writes: the source of every dependency in Baton.
//!
//! Pure: a text and default names in; sorted, normalised names out, or an error with line and
//! column. The text may be a query or a whole script. `lexer` turns it into tokens (split as
//! sqlparser's BigQuery tokenizer splits it, without copying), `reader` reads its structure,
//! `names` normalises the names it finds, `import` checks the restricted SELECT of an import
//! table.

pub mod import;
mod lexer;
mod names;
mod reader;

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

pub use reader::MAX_DEPTH;

/// The project and dataset that qualify names written with fewer parts. Without them, names
/// stay as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Defaults {
    pub project: Option<String>,
    pub dataset: Option<String>,
}

impl Defaults {
    pub fn new(project: &str, dataset: &str) -> Self {
        Self {
            project: Some(project.to_string()),
            dataset: Some(dataset.to_string()),
        }
    }
}

/// What a SQL text reads and writes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Analysis {
    /// Tables (and models) read, dotted and without backticks: `project.dataset.table` when
    /// defaults were given, else as written. Wildcard tables keep their `*`.
    pub reads: BTreeSet<String>,
    /// Tables, views and models created, changed or dropped (not temporary tables).
    pub writes: BTreeSet<String>,
    /// Part of the text had a shape the reader could not place and was read by keywords
    /// alone: the answer may miss a table or take a name for one.
    pub lenient: bool,
    /// What the SQL does that no reading can see (`EXECUTE IMMEDIATE` of a computed string,
    /// `CALL`), with its line.
    pub unknowable: Vec<String>,
    /// The named query parameters it uses (`@run_time` gives `run_time`), lowercase.
    #[serde(default)]
    pub parameters: BTreeSet<String>,
}

/// SQL that cannot be read, with the place to look.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SqlError {
    /// 1-based.
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for SqlError {}

/// What `sql` reads and writes.
pub fn analyze(sql: &str, defaults: &Defaults) -> Result<Analysis, SqlError> {
    let mut temp = HashSet::new();
    let out = reader::read(sql, defaults, &mut temp, 0)?;
    Ok(Analysis {
        reads: out.reads,
        writes: out.writes,
        lenient: out.lenient,
        unknowable: out.unknowable,
        parameters: out.parameters,
    })
}

/// The text of `sql` as one query that can be wrapped in brackets (`USING (…)`, `FROM (…)`):
/// without the semicolons (and the comments after them) that end it. A script of several
/// statements is refused, at the start of its second statement.
pub fn single_query(sql: &str) -> Result<&str, SqlError> {
    use lexer::Token;
    let tokens = lexer::Tokens::new(sql)?;
    let Some(last) = tokens
        .toks
        .iter()
        .rposition(|t| !matches!(t.token, Token::SemiColon))
    else {
        return Err(SqlError {
            line: 1,
            column: 1,
            message: "the SQL holds no query".into(),
        });
    };
    if let Some(semicolon) = tokens.toks[..last]
        .iter()
        .position(|t| t.token == Token::SemiColon)
    {
        let second = tokens.toks[semicolon..=last]
            .iter()
            .find(|t| t.token != Token::SemiColon)
            .expect("the last token is no semicolon");
        return Err(lexer::error_at(
            sql,
            second,
            "one query is needed, not a script: a second statement begins here",
        ));
    }
    Ok(&sql[..tokens.toks[last].end as usize])
}

#[cfg(test)]
mod single_query_tests {
    use super::single_query;

    #[test]
    fn a_query_loses_its_final_semicolons_and_what_follows_them() {
        assert_eq!(single_query("SELECT 1").unwrap(), "SELECT 1");
        assert_eq!(
            single_query("SELECT 'é;' AS x ; -- done\n").unwrap(),
            "SELECT 'é;' AS x"
        );
        assert_eq!(
            single_query("-- header\nSELECT a\nFROM t -- the end\n").unwrap(),
            "-- header\nSELECT a\nFROM t"
        );
    }

    #[test]
    fn a_script_is_refused_where_its_second_statement_begins() {
        let e = single_query("SELECT 1;\n  SELECT 2").unwrap_err();
        assert_eq!((e.line, e.column), (2, 3));
        assert!(e.message.contains("one query is needed"));
        assert!(single_query("  ; ").is_err());
    }
}
