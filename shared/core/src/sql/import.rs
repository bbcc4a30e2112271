//! The SQL of an import table: what Baton runs on the source database (PostgreSQL or MySQL)
//! to copy a table. Only `SELECT <columns or expressions> FROM <one table> [WHERE …]
//! [LIMIT n]` is allowed, parsed in the source's dialect with sqlparser; anything else is
//! refused with what is not allowed and where. Baton adds its own ordering and watermark
//! conditions to incremental imports, so the query must not bring its own.

use std::ops::ControlFlow;

use sqlparser::ast::{
    GroupByExpr, LimitClause, Query, SelectItem, SetExpr, Spanned, Statement, TableFactor, Visit,
    Visitor,
};
use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Span;

use super::SqlError;

/// The database an import reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceDialect {
    PostgreSql,
    MySql,
}

/// An accepted import query, in parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportQuery {
    /// The source table as written: `schema.table` or `table`.
    pub table: String,
    /// The selected columns and expressions as written; `None` for `*`.
    pub columns: Option<Vec<String>>,
    /// The WHERE condition as written.
    pub filter: Option<String>,
    pub limit: Option<u64>,
}

fn refuse(span: Span, what: &str) -> SqlError {
    SqlError {
        line: span.start.line.max(1),
        column: span.start.column.max(1),
        message: format!(
            "{what} is not allowed: an import is `SELECT columns FROM one table [WHERE …] [LIMIT n]`"
        ),
    }
}

fn parse_error(e: ParserError, sql: &str) -> SqlError {
    let text = match e {
        ParserError::TokenizerError(s) | ParserError::ParserError(s) => s,
        ParserError::RecursionLimitExceeded => "the SQL nests too deep".into(),
    };
    match text.rsplit_once(" at Line: ").and_then(|(m, place)| {
        let (l, c) = place.split_once(", Column: ")?;
        Some((
            m.to_string(),
            l.trim().parse().ok()?,
            c.trim().parse().ok()?,
        ))
    }) {
        Some((message, line, column)) => SqlError {
            line,
            column,
            message,
        },
        // At the end of the input sqlparser gives no place: the end of the text is the place.
        None => SqlError {
            line: sql.lines().count().max(1) as u64,
            column: sql.lines().last().map_or(0, |l| l.chars().count()) as u64 + 1,
            message: text,
        },
    }
}

/// Checks an import's SQL and returns its parts.
pub fn check_import(sql: &str, dialect: SourceDialect) -> Result<ImportQuery, SqlError> {
    let dialect: &dyn Dialect = match dialect {
        SourceDialect::PostgreSql => &PostgreSqlDialect {},
        SourceDialect::MySql => &MySqlDialect {},
    };
    let statements = Parser::new(dialect)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| parse_error(e, sql))?;
    let statement = match statements.as_slice() {
        [one] => one,
        [] => {
            return Err(SqlError {
                line: 1,
                column: 1,
                message: "there is no SQL statement here".into(),
            });
        }
        [_, second, ..] => return Err(refuse(second.span(), "a second statement")),
    };
    let Statement::Query(query) = statement else {
        return Err(refuse(statement.span(), "a statement other than SELECT"));
    };
    if let Some(with) = &query.with {
        return Err(refuse(with.span(), "WITH"));
    }
    if let Some(order) = &query.order_by {
        return Err(refuse(
            order.span(),
            "ORDER BY (Baton orders incremental imports itself)",
        ));
    }
    if let Some(fetch) = &query.fetch {
        return Err(refuse(
            fetch.quantity.as_ref().map_or(query.span(), Spanned::span),
            "FETCH",
        ));
    }
    if !query.locks.is_empty() {
        return Err(refuse(query.span(), "a locking clause"));
    }
    let limit = match &query.limit_clause {
        None => None,
        Some(LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => {
            if let Some(offset) = offset {
                return Err(refuse(offset.value.span(), "OFFSET"));
            }
            if let Some(by) = limit_by.first() {
                return Err(refuse(by.span(), "LIMIT BY"));
            }
            match limit {
                None => None,
                Some(expr) => Some(
                    expr.to_string()
                        .parse::<u64>()
                        .map_err(|_| refuse(expr.span(), "a LIMIT that is not a whole number"))?,
                ),
            }
        }
        Some(LimitClause::OffsetCommaLimit { offset, .. }) => {
            return Err(refuse(offset.span(), "OFFSET"));
        }
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Err(refuse(
            query.body.span(),
            "UNION, INTERSECT, EXCEPT or VALUES",
        ));
    };
    if let Some(distinct) = &select.distinct {
        let _ = distinct;
        return Err(refuse(select.select_token.0.span, "DISTINCT"));
    }
    if select.having.is_some() || select.qualify.is_some() || !select.named_window.is_empty() {
        return Err(refuse(select.span(), "HAVING, QUALIFY or WINDOW"));
    }
    if let GroupByExpr::Expressions(exprs, _) = &select.group_by
        && let Some(first) = exprs.first()
    {
        return Err(refuse(first.span(), "GROUP BY"));
    }
    if matches!(select.group_by, GroupByExpr::All(_)) {
        return Err(refuse(select.span(), "GROUP BY"));
    }
    let from = match select.from.as_slice() {
        [one] => one,
        [] => return Err(refuse(select.span(), "a SELECT without FROM")),
        [_, second, ..] => return Err(refuse(second.span(), "a second table")),
    };
    if let Some(join) = from.joins.first() {
        return Err(refuse(join.relation.span(), "JOIN"));
    }
    let TableFactor::Table { name, args, .. } = &from.relation else {
        return Err(refuse(
            from.relation.span(),
            "reading from anything but a table",
        ));
    };
    if args.is_some() {
        return Err(refuse(from.relation.span(), "a table function"));
    }
    // No query inside the query: an import reads its one table only.
    struct Nested(Option<Span>, usize);
    impl Visitor for Nested {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            self.1 += 1;
            if self.1 > 1 && self.0.is_none() {
                self.0 = Some(q.span());
            }
            ControlFlow::Continue(())
        }
    }
    let mut nested = Nested(None, 0);
    let _ = statement.visit(&mut nested);
    if let Some(span) = nested.0 {
        return Err(refuse(span, "a subquery"));
    }
    let columns = match select.projection.as_slice() {
        [SelectItem::Wildcard(_)] => None,
        items => Some(items.iter().map(ToString::to_string).collect()),
    };
    Ok(ImportQuery {
        table: name.to_string(),
        columns,
        filter: select.selection.as_ref().map(ToString::to_string),
        limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(sql: &str) -> Result<ImportQuery, SqlError> {
        check_import(sql, SourceDialect::PostgreSql)
    }

    #[test]
    fn the_allowed_shape_comes_back_in_parts() {
        let q = pg("SELECT id, lower(email) AS email, created_at FROM public.users WHERE active AND id > 10 LIMIT 500").unwrap();
        assert_eq!(q.table, "public.users");
        assert_eq!(
            q.columns,
            Some(vec![
                "id".into(),
                "lower(email) AS email".into(),
                "created_at".into()
            ])
        );
        assert_eq!(q.filter.as_deref(), Some("active AND id > 10"));
        assert_eq!(q.limit, Some(500));
        let all = pg("SELECT * FROM users").unwrap();
        assert_eq!((all.columns, all.filter, all.limit), (None, None, None));
    }

    #[test]
    fn mysql_quoting_is_read_in_mysql() {
        let q = check_import(
            "SELECT `id`, `name` FROM `shop`.`orders` WHERE `status` = 'paid'",
            SourceDialect::MySql,
        )
        .unwrap();
        assert_eq!(q.table, "`shop`.`orders`");
    }

    #[test]
    fn everything_else_is_refused_with_what_and_where() {
        let cases = [
            ("SELECT * FROM a JOIN b ON a.id = b.id", "JOIN", 1, 22),
            ("SELECT * FROM a, b", "a second table", 1, 18),
            ("SELECT * FROM a\nORDER BY id", "ORDER BY", 2, 10),
            ("SELECT * FROM a LIMIT 10 OFFSET 5", "OFFSET", 1, 33),
            ("WITH x AS (SELECT 1) SELECT * FROM x", "WITH", 1, 1),
            ("SELECT * FROM a UNION SELECT * FROM b", "UNION", 1, 1),
            ("SELECT DISTINCT id FROM a", "DISTINCT", 1, 1),
            ("SELECT k, count(*) FROM a GROUP BY k", "GROUP BY", 1, 36),
            (
                "SELECT * FROM a WHERE id IN (SELECT id FROM b)",
                "a subquery",
                1,
                30,
            ),
            (
                "SELECT * FROM (SELECT 1) AS x",
                "anything but a table",
                1,
                16,
            ),
            ("DELETE FROM a", "other than SELECT", 1, 1),
            (
                "SELECT * FROM a; SELECT * FROM b",
                "a second statement",
                1,
                18,
            ),
            ("SELECT * FROM a LIMIT 1 + 1", "whole number", 1, 23),
        ];
        for (sql, what, line, column) in cases {
            let e = pg(sql).unwrap_err();
            assert!(e.message.contains(what), "{sql}: {e}");
            assert_eq!((e.line, e.column), (line, column), "{sql}: {e}");
        }
    }

    #[test]
    fn unparseable_sql_names_line_and_column() {
        let e = pg("SELECT id\nFROM").unwrap_err();
        assert_eq!((e.line, e.column), (2, 5), "{e}");
        let e = pg("SELECT id FROM t WHERE a = = 1").unwrap_err();
        assert_eq!((e.line, e.column), (1, 28), "{e}");
    }
}
