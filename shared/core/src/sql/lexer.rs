//! Tokens for the reader: sqlparser's BigQuery tokenizer (strings raw, triple-quoted and
//! byte, backticks, `--`, `#` and `/* */` comments, `|>`), without whitespace and comments,
//! with every bracket matched to its partner so that the reader can step over a group in one
//! move. Errors name line and column.

use sqlparser::dialect::BigQueryDialect;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use super::SqlError;

/// The tokens of a text and where each bracket closes.
pub(crate) struct Tokens {
    pub toks: Vec<TokenWithSpan>,
    /// For `(` and `[`, the index of the matching `)` or `]`; otherwise unused.
    pub partner: Vec<usize>,
}

impl Tokens {
    pub fn new(sql: &str) -> Result<Self, SqlError> {
        let toks: Vec<TokenWithSpan> = Tokenizer::new(&BigQueryDialect {}, sql)
            .tokenize_with_location()
            .map_err(|e| SqlError {
                line: e.location.line,
                column: e.location.column,
                message: e.message,
            })?
            .into_iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_)))
            .collect();
        let partner = match_brackets(&toks)?;
        check_legacy(sql, &toks)?;
        Ok(Self { toks, partner })
    }
}

pub(crate) fn error_at(tok: &TokenWithSpan, message: impl Into<String>) -> SqlError {
    SqlError {
        line: tok.span.start.line,
        column: tok.span.start.column,
        message: message.into(),
    }
}

fn match_brackets(toks: &[TokenWithSpan]) -> Result<Vec<usize>, SqlError> {
    let mut partner = vec![usize::MAX; toks.len()];
    let mut open: Vec<usize> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        match t.token {
            Token::LParen | Token::LBracket => open.push(i),
            Token::RParen | Token::RBracket => {
                let closing = if t.token == Token::RParen { "(" } else { "[" };
                let Some(o) = open.pop() else {
                    return Err(error_at(
                        t,
                        format!("`{}` has no `{closing}` before it", t.token),
                    ));
                };
                let expected = if toks[o].token == Token::LParen {
                    Token::RParen
                } else {
                    Token::RBracket
                };
                if t.token != expected {
                    return Err(error_at(
                        t,
                        format!(
                            "`{}` closes the `{}` at line {}, column {}, which needs `{expected}`",
                            t.token,
                            toks[o].token,
                            toks[o].span.start.line,
                            toks[o].span.start.column
                        ),
                    ));
                }
                partner[o] = i;
                partner[i] = o;
            }
            _ => {}
        }
    }
    if let Some(&o) = open.last() {
        return Err(error_at(
            &toks[o],
            format!("this `{}` is never closed", toks[o].token),
        ));
    }
    Ok(partner)
}

/// Legacy SQL is refused with a message that says so: a `#legacySQL` directive, or a table
/// written `[project:dataset.table]` after FROM, JOIN or a comma.
fn check_legacy(sql: &str, toks: &[TokenWithSpan]) -> Result<(), SqlError> {
    // The directive is the first line that is neither blank nor a `--` comment.
    let directive = sql
        .lines()
        .enumerate()
        .find(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with("--"));
    if let Some((index, line)) = directive
        && line
            .trim_start()
            .get(..10)
            .is_some_and(|s| s.eq_ignore_ascii_case("#legacysql"))
    {
        return Err(SqlError {
            line: index as u64 + 1,
            column: 1,
            message: "legacy SQL is not supported: Baton reads BigQuery Standard SQL".into(),
        });
    }
    for w in toks.windows(4) {
        let after_from = match &w[0].token {
            Token::Word(word) if word.quote_style.is_none() => {
                word.value.eq_ignore_ascii_case("FROM") || word.value.eq_ignore_ascii_case("JOIN")
            }
            Token::Comma => true,
            _ => false,
        };
        if after_from
            && w[1].token == Token::LBracket
            && matches!(w[2].token, Token::Word(_))
            && w[3].token == Token::Colon
        {
            return Err(error_at(
                &w[1],
                "`[project:dataset.table]` is legacy SQL, which Baton does not read: write \
                 `project.dataset.table` (Standard SQL)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_are_matched() {
        let t = Tokens::new("SELECT (a + (b)) FROM t WHERE x IN [1, 2]").unwrap();
        let open = t
            .toks
            .iter()
            .position(|t| t.token == Token::LParen)
            .unwrap();
        assert_eq!(t.toks[t.partner[open]].token, Token::RParen);
        assert_eq!(t.partner[t.partner[open]], open);
    }

    #[test]
    fn unbalanced_brackets_say_where() {
        let e = Tokens::new("SELECT (a\nFROM t").err().unwrap();
        assert_eq!((e.line, e.column), (1, 8));
        assert!(e.message.contains("never closed"), "{e}");
        let e = Tokens::new("SELECT a)\nFROM t").err().unwrap();
        assert_eq!((e.line, e.column), (1, 9));
        let e = Tokens::new("SELECT [a)").err().unwrap();
        assert!(e.message.contains("needs `]`"), "{e}");
    }

    #[test]
    fn unterminated_strings_say_where() {
        let e = Tokens::new("SELECT 'abc\nFROM t").err().unwrap();
        assert_eq!((e.line, e.column), (1, 9), "{e}");
    }

    #[test]
    fn legacy_sql_is_refused_by_name() {
        let e = Tokens::new("SELECT x FROM [p:d.t]").err().unwrap();
        assert!(e.message.contains("legacy SQL"), "{e}");
        assert_eq!((e.line, e.column), (1, 15));
        let e = Tokens::new("\n#legacySQL\nSELECT x FROM t").err().unwrap();
        assert_eq!(e.line, 2);
        assert!(Tokens::new("#standardSQL\nSELECT [1, 2] AS a FROM t").is_ok());
    }
}
