//! Tokens for the reader: Baton's own BigQuery lexer. It splits a text as sqlparser's BigQuery
//! tokenizer does (strings raw, triple-quoted and byte, backticks, `--`, `#` and `/* */`
//! comments, `|>`; a test holds the two side by side), but a token is only its kind, where
//! it lies in the text, and for a word the keyword it is (of those the reader looks for, found
//! once in a small table, so that the reader compares numbers, not texts): nothing is copied,
//! and whitespace and comments leave nothing behind. Every bracket is matched to its partner
//! so that the reader can step over a group in one move. Errors name line and column.

use super::SqlError;

/// What a token is. Its text is the text's bytes from `start` to `end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Token {
    /// An unquoted word: a name, a keyword, `@parameter`, `@@system_variable`.
    Word,
    /// A name in backticks.
    Quoted,
    /// A string literal (bytes, hex and `N'…'` literals are `Other`).
    Str {
        raw: bool,
        triple: bool,
    },
    Number,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Period,
    SemiColon,
    Colon,
    Minus,
    Plus,
    Mul,
    Div,
    /// `=>`
    RArrow,
    /// `|>`, the pipe operator.
    Pipe,
    /// Any other operator, literal or character.
    Other,
}

/// Declares `Kw`, one variant per keyword the reader looks for, named as the keyword is
/// written, and `WORDS`, their texts in the same order.
macro_rules! keywords {
    ($($word:ident)*) => {
        /// A keyword the reader looks for. The lexer says which one each word is (a word is
        /// compared once, not at each look), and the reader compares these.
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        pub(crate) enum Kw {
            $($word),*
        }

        const WORDS: &[(&str, Kw)] = &[$((stringify!($word), Kw::$word)),*];
    };
}

keywords! {
    AGGREGATE ALL ALTER AND ANY ARRAY AS ASC ASSERT ASSERT_ROWS_MODIFIED
    AT BEGIN BETWEEN BREAK BY CALL CASE CAST CLONE COLLATE
    COMMIT CONTAINS CONTINUE COPY CORRESPONDING CREATE CROSS CUBE CURRENT DATA
    DATE DATETIME DAY DECLARE DEFAULT DEFINE DELETE DESC DISTINCT DO
    DROP ELSE ELSEIF END ENUM ESCAPE EXCEPT EXCEPTION EXCLUDE EXECUTE
    EXISTS EXPORT EXTERNAL EXTRACT FALSE FETCH FOLLOWING FOR FROM FULL
    FUNCTION GRANT GROUP GROUPING GROUPS HASH HAVING HOUR IF IGNORE
    IMMEDIATE IN INCLUDE INNER INSERT INTERSECT INTERVAL INTO IS ITERATE
    JOIN LATERAL LEAVE LEFT LIKE LIMIT LOAD LOOKUP LOOP MATCH_RECOGNIZE
    MATERIALIZED MERGE MINUTE MODEL MONTH NAME NATURAL NEW NO NOT
    NULL NULLS OF OFFSET ON OR ORDER OUTER OVER OVERWRITE
    PARTITION PIVOT PRECEDING PROCEDURE PROTO QUALIFY RAISE RANGE RECURSIVE REPEAT
    REPLACE RESPECT RETURN REVOKE RIGHT ROLLBACK ROLLUP ROWS SECOND SELECT
    SET SNAPSHOT SOME STRICT STRUCT SYSTEM_TIME TABLE TABLESAMPLE TEMP TEMPORARY
    THEN TIMESTAMP TO TRANSACTION TREAT TRUE TRUNCATE UNBOUNDED UNDROP UNION
    UNNEST UNPIVOT UNTIL UPDATE USING VIEW WEEK WHEN WHERE WHILE
    WINDOW WITH WITHIN YEAR
}

/// The shortest and the longest keyword's length.
const KEYWORD_LENGTHS: (usize, usize) = {
    let (mut shortest, mut longest) = (usize::MAX, 0);
    let mut i = 0;
    while i < WORDS.len() {
        let n = WORDS[i].0.len();
        if n < shortest {
            shortest = n;
        }
        if n > longest {
            longest = n;
        }
        i += 1;
    }
    (shortest, longest)
};

/// Slots of the keyword table: a power of two, about three times as many as keywords, so that
/// a look-up mostly ends at its first slot.
const SLOTS: usize = 512;

/// Every keyword in the slot `slot` gives it, or the next free one after it; built when
/// Baton is compiled.
const TABLE: [Option<Kw>; SLOTS] = {
    let mut table = [None; SLOTS];
    let mut i = 0;
    while i < WORDS.len() {
        let (word, kw) = WORDS[i];
        let mut slot = slot(word.as_bytes());
        while table[slot].is_some() {
            slot = (slot + 1) % SLOTS;
        }
        table[slot] = Some(kw);
        i += 1;
    }
    table
};

/// Where a word of two bytes or more looks for its keyword: from its length, first, second
/// and last bytes, each with its 0x20 bit cleared (which upper-cases a letter), so that a
/// word looks where its upper-case form does. Any weights would be right; these give most
/// of today's keywords a slot of their own (20 steps past a taken slot in all, 2 at most).
const fn slot(word: &[u8]) -> usize {
    let (first, second, last) = (
        word[0] & !0x20,
        word[1] & !0x20,
        word[word.len() - 1] & !0x20,
    );
    (first as usize * 24 + second as usize * 5 + last as usize * 3 + word.len() * 61) % SLOTS
}

impl Kw {
    /// The keyword a word is, in any case.
    pub fn of(word: &[u8]) -> Option<Self> {
        if word.len() < KEYWORD_LENGTHS.0 || word.len() > KEYWORD_LENGTHS.1 {
            return None;
        }
        let mut slot = slot(word);
        while let Some(kw) = TABLE[slot] {
            let text = WORDS[kw as usize].0.as_bytes();
            // A keyword's bytes are upper-case letters and `_`: clearing a word's 0x20 bits
            // makes it equal exactly when it is the keyword in any case (DEL would pass for
            // `_`, but the lexer's words hold none).
            if text.len() == word.len() && text.iter().zip(word).all(|(k, w)| *k == w & !0x20) {
                return Some(kw);
            }
            slot = (slot + 1) % SLOTS;
        }
        None
    }
}

/// A token and where it lies: byte offsets into the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tok {
    pub token: Token,
    /// For a word, the keyword it is.
    pub kw: Option<Kw>,
    pub start: u32,
    pub end: u32,
}

impl Tok {
    /// Whether `next` begins where this one ends, with nothing between them.
    pub fn touches(&self, next: &Tok) -> bool {
        self.end == next.start
    }
}

/// The tokens of a text and where each bracket closes.
pub(crate) struct Tokens {
    pub toks: Vec<Tok>,
    /// For `(` and `[`, the index of the matching `)` or `]`; otherwise unused.
    pub partner: Vec<usize>,
}

impl Tokens {
    pub fn new(sql: &str) -> Result<Self, SqlError> {
        let toks = lex(sql)?;
        let partner = match_brackets(sql, &toks)?;
        check_legacy(sql, &toks)?;
        Ok(Self { toks, partner })
    }
}

/// The whole text of a token.
pub(crate) fn text<'a>(sql: &'a str, tok: &Tok) -> &'a str {
    &sql[tok.start as usize..tok.end as usize]
}

/// A word's name: an unquoted word as written, a quoted one between its backticks.
pub(crate) fn name<'a>(sql: &'a str, tok: &Tok) -> &'a str {
    let t = text(sql, tok);
    match tok.token {
        Token::Quoted => &t[1..t.len() - 1],
        _ => t,
    }
}

/// The value of a string literal, its escapes undone as BigQuery undoes them (none in a raw
/// string); a doubled quote in a string of one quote stands for one quote.
pub(crate) fn string_value(sql: &str, tok: &Tok) -> String {
    let Token::Str { raw, triple } = tok.token else {
        return String::new();
    };
    let t = text(sql, tok);
    let t = if raw { &t[1..] } else { t };
    let quotes = if triple { 3 } else { 1 };
    let quote = t.as_bytes()[0] as char;
    // `''` is an empty string of one quote.
    let inner = t.get(quotes..t.len() - quotes).unwrap_or("");
    let mut value = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if !raw => {
                if let Some(next) = chars.next() {
                    value.push(match next {
                        '0' => '\0',
                        'a' => '\u{7}',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'Z' => '\u{1a}',
                        other => other,
                    });
                }
            }
            c if c == quote && !triple => {
                chars.next();
                value.push(c);
            }
            c => value.push(c),
        }
    }
    value
}

/// The 1-based line and column (in characters) of a byte offset.
pub(crate) fn location(sql: &str, offset: u32) -> (u64, u64) {
    let before = &sql[..(offset as usize).min(sql.len())];
    let line = before.bytes().filter(|&b| b == b'\n').count() as u64 + 1;
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    let column = before[line_start..].chars().count() as u64 + 1;
    (line, column)
}

pub(crate) fn error_at(sql: &str, tok: &Tok, message: impl Into<String>) -> SqlError {
    error_at_offset(sql, tok.start, message)
}

fn error_at_offset(sql: &str, offset: u32, message: impl Into<String>) -> SqlError {
    let (line, column) = location(sql, offset);
    SqlError {
        line,
        column,
        message: message.into(),
    }
}

fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_word_part(b: u8) -> bool {
    WORD_PART[usize::from(b)]
}

/// Which bytes continue a word: ASCII letters, digits and `_`.
static WORD_PART: [bool; 256] = {
    let mut part = [false; 256];
    let mut b = 0;
    while b < 256 {
        part[b] = (b as u8).is_ascii_alphanumeric() || b == b'_' as usize;
        b += 1;
    }
    part
};

/// The index after the run of bytes from `i` for which `f` holds.
fn run(b: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while i < b.len() && f(b[i]) {
        i += 1;
    }
    i
}

/// Where a quoted literal whose first quote is at `i` ends: one quote, or three; a backslash
/// escapes the next character when `backslash`; in a literal of one quote a doubled quote
/// stands for one. `None` when it never ends. `triple` says which it was.
fn quoted(b: &[u8], i: usize, backslash: bool, allow_triple: bool) -> (Option<usize>, bool) {
    let q = b[i];
    let opening = if allow_triple {
        run(b, i, |c| c == q).min(i + 3) - i
    } else {
        1
    };
    match opening {
        2 => return (Some(i + 2), false),
        3 => {
            let mut j = i + 3;
            while j < b.len() {
                if b[j] == b'\\' && backslash {
                    j += 2;
                } else if b[j] == q && b.get(j + 1) == Some(&q) && b.get(j + 2) == Some(&q) {
                    return (Some(j + 3), true);
                } else {
                    j += 1;
                }
            }
            return (None, true);
        }
        _ => {}
    }
    let mut j = i + 1;
    while j < b.len() {
        if b[j] == b'\\' && backslash {
            j += 2;
        } else if b[j] == q {
            if b.get(j + 1) == Some(&q) {
                j += 2;
            } else {
                return (Some(j + 1), false);
            }
        } else {
            j += 1;
        }
    }
    (None, false)
}

/// The tokens of `sql`, without whitespace and comments.
fn lex(sql: &str) -> Result<Vec<Tok>, SqlError> {
    if u32::try_from(sql.len()).is_err() {
        return Err(SqlError {
            line: 1,
            column: 1,
            message: "the SQL is larger than 4 GiB".into(),
        });
    }
    let b = sql.as_bytes();
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let never_closed = |start: usize, what: &str| error_at_offset(sql, start as u32, what);
    let string = |start: usize, quote: usize, backslash: bool, allow_triple: bool| match quoted(
        b,
        quote,
        backslash,
        allow_triple,
    ) {
        (Some(end), triple) => Ok((end, triple)),
        (None, _) => Err(never_closed(start, "this string is never closed")),
    };
    let mut toks: Vec<Tok> = Vec::with_capacity(b.len() / 6);
    let mut i = 0;
    while i < b.len() {
        // Runs of whitespace, the commonest bytes after words, in a loop of their own.
        if matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
            i += 1;
            continue;
        }
        let c = b[i];
        let start = i;
        let next = at(i + 1);
        let mut kw = None;
        let (token, end) = match c {
            b'-' if next == b'-' => {
                i = run(b, i, |c| c != b'\n');
                continue;
            }
            b'#' => {
                i = run(b, i, |c| c != b'\n');
                continue;
            }
            b'/' if next == b'*' => {
                match sql[i + 2..].find("*/") {
                    Some(n) => i += 2 + n + 2,
                    None => {
                        return Err(never_closed(
                            i,
                            "this comment is never closed: `*/` is missing",
                        ));
                    }
                }
                continue;
            }
            b'\'' | b'"' => {
                let (end, triple) = string(i, i, true, true)?;
                (Token::Str { raw: false, triple }, end)
            }
            b'r' | b'R' if next == b'\'' || next == b'"' => {
                let (end, triple) = string(i, i + 1, false, true)?;
                (Token::Str { raw: true, triple }, end)
            }
            // Bytes; they name no table, and nothing reads their value.
            b'b' | b'B' if next == b'\'' || next == b'"' => {
                (Token::Other, string(i, i + 1, false, true)?.0)
            }
            b'n' | b'N' | b'x' | b'X' if next == b'\'' => {
                (Token::Other, string(i, i + 1, true, false)?.0)
            }
            b'`' => {
                let mut j = i + 1;
                loop {
                    match b.get(j) {
                        Some(b'`') if at(j + 1) == b'`' => j += 2,
                        Some(b'`') => break,
                        Some(_) => j += 1,
                        None => {
                            return Err(never_closed(
                                i,
                                "this quoted name is never closed: a closing ` is missing",
                            ));
                        }
                    }
                }
                (Token::Quoted, j + 1)
            }
            // `t._c`: a period touching a name, then a name beginning with `_`.
            b'.' if next == b'_' => {
                let after_name = toks.last().is_some_and(|t| {
                    matches!(t.token, Token::Word | Token::Quoted) && t.end as usize == i
                });
                if !after_name {
                    return Err(error_at_offset(
                        sql,
                        i as u32,
                        "a `_` right after `.` must follow a name",
                    ));
                }
                (Token::Period, i + 1)
            }
            b'0'..=b'9' | b'.' => {
                let mut j = run(b, i, |c| c.is_ascii_digit());
                if j == i + 1 && c == b'0' && at(j) == b'x' {
                    (Token::Other, run(b, j + 1, |c| c.is_ascii_hexdigit()))
                } else {
                    if at(j) == b'.' {
                        j = run(b, j + 1, |c| c.is_ascii_digit());
                    }
                    if j == i + 1 && c == b'.' {
                        (Token::Period, j)
                    } else {
                        if matches!(at(j), b'e' | b'E') {
                            let k = if matches!(at(j + 1), b'+' | b'-') {
                                j + 2
                            } else {
                                j + 1
                            };
                            if at(k).is_ascii_digit() {
                                j = run(b, k, |c| c.is_ascii_digit());
                            }
                        }
                        if at(j) == b'L' {
                            j += 1;
                        }
                        (Token::Number, j)
                    }
                }
            }
            // As sqlparser reads them: `@` then any one character but a space or a quote
            // begins a word (`@param`); so do `@@` and one (`@@error.message`).
            b'@' => {
                let one_more = |k: usize| {
                    let n = sql[k..].chars().next().map_or(0, char::len_utf8);
                    (Token::Word, run(b, k + n, is_word_part))
                };
                match next {
                    0 if i + 1 == b.len() => (Token::Other, i + 1),
                    b'>' | b'?' => (Token::Other, i + 2),
                    b'@' if i + 2 < b.len() && at(i + 2) != b' ' => one_more(i + 2),
                    b'@' => (Token::Other, i + 2),
                    b' ' | b'\'' | b'"' | b'`' => (Token::Other, i + 1),
                    _ => one_more(i + 1),
                }
            }
            c if is_word_start(c) => {
                let j = run(b, i + 1, is_word_part);
                kw = Kw::of(&b[i..j]);
                (Token::Word, j)
            }
            b'(' => (Token::LParen, i + 1),
            b')' => (Token::RParen, i + 1),
            b'[' => (Token::LBracket, i + 1),
            b']' => (Token::RBracket, i + 1),
            b',' => (Token::Comma, i + 1),
            b';' => (Token::SemiColon, i + 1),
            b'+' => (Token::Plus, i + 1),
            b'*' => (Token::Mul, i + 1),
            b'/' => (Token::Div, i + 1),
            b':' if matches!(next, b':' | b'=') => (Token::Other, i + 2),
            b':' => (Token::Colon, i + 1),
            b'-' if next == b'>' => (Token::Other, if at(i + 2) == b'>' { i + 3 } else { i + 2 }),
            b'-' => (Token::Minus, i + 1),
            b'=' if next == b'>' => (Token::RArrow, i + 2),
            b'=' if next == b'=' => (Token::Other, i + 2),
            b'|' if next == b'>' => (Token::Pipe, i + 2),
            b'|' if next == b'|' && at(i + 2) == b'/' => (Token::Other, i + 3),
            b'|' if matches!(next, b'|' | b'/') => (Token::Other, i + 2),
            b'!' if next == b'~' => {
                let j = match (at(i + 2), at(i + 3)) {
                    (b'*', _) => i + 3,
                    (b'~', b'*') => i + 4,
                    (b'~', _) => i + 3,
                    _ => i + 2,
                };
                (Token::Other, j)
            }
            b'!' if matches!(next, b'=' | b'!') => (Token::Other, i + 2),
            b'<' if next == b'=' && at(i + 2) == b'>' => (Token::Other, i + 3),
            b'<' if matches!(next, b'=' | b'>' | b'<' | b'@') => (Token::Other, i + 2),
            b'>' if matches!(next, b'=' | b'>') => (Token::Other, i + 2),
            b'&' if next == b'&' => (Token::Other, i + 2),
            b'^' if next == b'@' => (Token::Other, i + 2),
            b'~' if next == b'~' && at(i + 2) == b'*' => (Token::Other, i + 3),
            b'~' if matches!(next, b'*' | b'~') => (Token::Other, i + 2),
            b'?' => {
                let digits = sql[i + 1..]
                    .find(|c: char| !c.is_numeric())
                    .unwrap_or(sql.len() - i - 1);
                (Token::Other, i + 1 + digits)
            }
            b'$' => {
                let rest = sql[i + 1..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(sql.len() - i - 1);
                (Token::Other, i + 1 + rest)
            }
            c if c < 0x80 => (Token::Other, i + 1),
            _ => {
                let ch = sql[i..].chars().next().expect("a character starts here");
                if ch.is_whitespace() {
                    i += ch.len_utf8();
                    continue;
                }
                (Token::Other, i + ch.len_utf8())
            }
        };
        toks.push(Tok {
            token,
            kw,
            start: start as u32,
            end: end as u32,
        });
        i = end;
    }
    Ok(toks)
}

fn match_brackets(sql: &str, toks: &[Tok]) -> Result<Vec<usize>, SqlError> {
    let mut partner = vec![usize::MAX; toks.len()];
    let mut open: Vec<usize> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        match t.token {
            Token::LParen | Token::LBracket => open.push(i),
            Token::RParen | Token::RBracket => {
                let closing = if t.token == Token::RParen { "(" } else { "[" };
                let Some(o) = open.pop() else {
                    return Err(error_at(
                        sql,
                        t,
                        format!("`{}` has no `{closing}` before it", text(sql, t)),
                    ));
                };
                let expected = if toks[o].token == Token::LParen {
                    (Token::RParen, ")")
                } else {
                    (Token::RBracket, "]")
                };
                if t.token != expected.0 {
                    let (line, column) = location(sql, toks[o].start);
                    return Err(error_at(
                        sql,
                        t,
                        format!(
                            "`{}` closes the `{}` at line {line}, column {column}, which needs `{}`",
                            text(sql, t),
                            text(sql, &toks[o]),
                            expected.1
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
            sql,
            &toks[o],
            format!("this `{}` is never closed", text(sql, &toks[o])),
        ));
    }
    Ok(partner)
}

/// Legacy SQL is refused with a message that says so: a `#legacySQL` directive, or a table
/// written `[project:dataset.table]` after FROM, JOIN or a comma.
fn check_legacy(sql: &str, toks: &[Tok]) -> Result<(), SqlError> {
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
        if w[1].token != Token::LBracket {
            continue;
        }
        let after_from = matches!(w[0].kw, Some(Kw::FROM | Kw::JOIN)) || w[0].token == Token::Comma;
        if after_from
            && matches!(w[2].token, Token::Word | Token::Quoted)
            && w[3].token == Token::Colon
        {
            return Err(error_at(
                sql,
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
    use proptest::prelude::*;
    use sqlparser::dialect::BigQueryDialect;
    use sqlparser::tokenizer::{Token as Their, Tokenizer};

    /// A token as both lexers can say it: kind, where it starts and ends (line, column), and
    /// for strings and quoted names, their value as written.
    type Said = (Token, (u64, u64), (u64, u64), Option<String>);

    fn ours(sql: &str) -> Option<Vec<Said>> {
        let toks = lex(sql).ok()?;
        Some(
            toks.iter()
                .map(|t| {
                    let value = match t.token {
                        Token::Str { .. } => Some(string_value(sql, t)),
                        Token::Quoted => Some(name(sql, t).to_string()),
                        _ => None,
                    };
                    (t.token, location(sql, t.start), location(sql, t.end), value)
                })
                .collect(),
        )
    }

    fn theirs(sql: &str) -> Option<Vec<Said>> {
        let toks = Tokenizer::new(&BigQueryDialect {}, sql)
            .tokenize_with_location()
            .ok()?;
        let str = |raw, triple, s: &String| (Token::Str { raw, triple }, Some(s.clone()));
        Some(
            toks.iter()
                .filter_map(|t| {
                    let (token, value) = match &t.token {
                        Their::Whitespace(_) => return None,
                        Their::Word(w) if w.quote_style.is_some() => {
                            (Token::Quoted, Some(w.value.replace('`', "``")))
                        }
                        Their::Word(_) => (Token::Word, None),
                        Their::SingleQuotedString(s) | Their::DoubleQuotedString(s) => {
                            str(false, false, s)
                        }
                        Their::TripleSingleQuotedString(s) | Their::TripleDoubleQuotedString(s) => {
                            str(false, true, s)
                        }
                        Their::SingleQuotedRawStringLiteral(s)
                        | Their::DoubleQuotedRawStringLiteral(s) => str(true, false, s),
                        Their::TripleSingleQuotedRawStringLiteral(s)
                        | Their::TripleDoubleQuotedRawStringLiteral(s) => str(true, true, s),
                        Their::Number(..) => (Token::Number, None),
                        Their::LParen => (Token::LParen, None),
                        Their::RParen => (Token::RParen, None),
                        Their::LBracket => (Token::LBracket, None),
                        Their::RBracket => (Token::RBracket, None),
                        Their::Comma => (Token::Comma, None),
                        Their::Period => (Token::Period, None),
                        Their::SemiColon => (Token::SemiColon, None),
                        Their::Colon => (Token::Colon, None),
                        Their::Minus => (Token::Minus, None),
                        Their::Plus => (Token::Plus, None),
                        Their::Mul => (Token::Mul, None),
                        Their::Div => (Token::Div, None),
                        Their::RArrow => (Token::RArrow, None),
                        Their::VerticalBarRightAngleBracket => (Token::Pipe, None),
                        _ => (Token::Other, None),
                    };
                    let at = |l: sqlparser::tokenizer::Location| (l.line, l.column);
                    Some((token, at(t.span.start), at(t.span.end), value))
                })
                .collect(),
        )
    }

    fn same_as_sqlparser(sql: &str) -> Result<(), String> {
        let (a, b) = (ours(sql), theirs(sql));
        if a.is_some() != b.is_some() {
            return Err(format!(
                "{sql:?}: ours {}, sqlparser's {}",
                if a.is_some() { "reads" } else { "refuses" },
                if b.is_some() { "reads" } else { "refuses" }
            ));
        }
        let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
        if let Some(k) = (0..a.len().max(b.len())).find(|&k| a.get(k) != b.get(k)) {
            return Err(format!(
                "{sql:?}: token {k}: ours {:?}, sqlparser's {:?}",
                a.get(k),
                b.get(k)
            ));
        }
        Ok(())
    }

    /// Every SQL text the project holds (the reader's fixtures, the example catalog) is
    /// split as sqlparser splits it.
    #[test]
    fn every_fixture_is_split_as_sqlparser_splits_it() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut folders = vec![root.join("tests/sql"), root.join("../../tests/catalogs")];
        let mut seen = 0;
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                } else if path.extension().is_some_and(|e| e == "sql") {
                    let sql = std::fs::read_to_string(&path).unwrap();
                    same_as_sqlparser(&sql).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    seen += 1;
                }
            }
        }
        assert!(seen > 300, "only {seen} fixtures found");
    }

    #[test]
    fn tricky_texts_are_split_as_sqlparser_splits_them() {
        for sql in [
            "SELECT 'it''s', \"q\\\"\", '''a''b''', r'\\d+', R\"x\", r'''raw''', b'by', B\"\"\"b\"\"\"",
            "SELECT `p.d.t`, `a``b`, @param, @@error.message, @ x, @'s', @@ 1",
            "SELECT 1.5e10, .5, 1., 0x1F, 12L, 1e, 1e+, a.25ab, t._c FROM my-project.d.t_*",
            "SELECT a->b, a->>b, a||b, a|>b, a=>b, a==b, a!=b, a<>b, a<=>b, a<=b, a<<b",
            "SELECT 1 -- comment\n# another\n/* block\n */ FROM t; SELECT ?1, ?, a::b, a:=b",
            "SELECT N'nat', X'1f', x'1F', n\"word\", é, \u{a0}1, {}, \\",
            "SELECT '', \"\", '''''', r'', b'' FROM t",
        ] {
            same_as_sqlparser(sql).unwrap();
        }
    }

    const PIECES: &[&str] = &[
        "'", "\"", "'''", "\"\"\"", "`", "``", "\\", "--", "#", "/*", "*/", "\n", " ", "\r", "\t",
        "r", "R", "b", "B", "N", "n", "x", "X", "@", "@@", ".", "_", "0", "1", "e", "E", "L", "x1",
        "-", ">", "<", "=", "|", "!", "~", "*", "&", "^", ":", "?", "(", ")", "[", "]", ",", ";",
        "+", "/", "%", "{", "}", "é", "\u{a0}", "SELECT", "FROM", "t", "a1",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

        /// Any text of the pieces that make lexing hard is refused by both lexers or split
        /// by both into the same tokens at the same places, with the same values.
        #[test]
        fn any_text_is_split_as_sqlparser_splits_it(
            pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..40)
        ) {
            let sql = pieces.concat();
            if let Err(e) = same_as_sqlparser(&sql) {
                return Err(TestCaseError::fail(e));
            }
        }
    }

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
    fn what_is_never_closed_is_named_where_it_opens() {
        let e = Tokens::new("SELECT 'abc\nFROM t").err().unwrap();
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (1, 8, "this string is never closed")
        );
        let e = Tokens::new("SELECT 1\n  /* note\nFROM t").err().unwrap();
        assert_eq!((e.line, e.column), (2, 3), "{e}");
        assert!(e.message.contains("`*/` is missing"), "{e}");
        let e = Tokens::new("SELECT é, `p.d\nFROM t").err().unwrap();
        assert_eq!((e.line, e.column), (1, 11), "columns count characters: {e}");
        assert!(e.message.contains("quoted name"), "{e}");
        let e = Tokens::new("SELECT r'''abc''").err().unwrap();
        assert_eq!((e.line, e.column), (1, 8), "{e}");
    }

    #[test]
    fn string_values_undo_their_escapes_unless_raw() {
        let value = |sql: &str| {
            let t = Tokens::new(sql).unwrap();
            string_value(sql, &t.toks[0])
        };
        assert_eq!(value(r"'a\'b\nc'"), "a'b\nc");
        assert_eq!(value("'it''s'"), "it's");
        assert_eq!(value(r"r'a\nb'"), r"a\nb");
        assert_eq!(value("'''x''y'''"), "x''y");
        assert_eq!(value("\"\""), "");
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

    #[test]
    fn keywords_are_known_in_any_case_and_nothing_else_is() {
        for &(word, kw) in WORDS {
            let lower = word.to_lowercase();
            let mixed: String = word
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i % 2 == 0 {
                        c
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect();
            for text in [word, &lower, &mixed] {
                assert_eq!(Kw::of(text.as_bytes()), Some(kw), "{text}");
            }
            for near in [format!("{word}_x"), format!("x{word}"), format!("{word}1")] {
                assert_eq!(Kw::of(near.as_bytes()), None, "{near}");
            }
        }
        for text in [
            "",
            "t",
            "c0",
            "selec",
            "sel_ct",
            "s\u{7f}lect",
            "assert_rows_modified_",
        ] {
            assert_eq!(Kw::of(text.as_bytes()), None, "{text}");
        }
        // Only words are keywords: not strings, quoted names or parameters.
        let sql = "SELECT 'from', `where`, @limit FROM t";
        let kws: Vec<Option<Kw>> = Tokens::new(sql)
            .unwrap()
            .toks
            .iter()
            .map(|t| t.kw)
            .collect();
        assert_eq!(
            kws,
            [
                Some(Kw::SELECT),
                None,
                None,
                None,
                None,
                None,
                Some(Kw::FROM),
                None
            ]
        );
    }
}
