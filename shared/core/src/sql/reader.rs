//! The reader: what a BigQuery SQL text (a query or a script) reads and writes, found by
//! reading its structure from tokens.
//!
//! It reads statements, script blocks (flattened: control flow does not change what is read),
//! queries with their WITH clauses, set operations and pipe operators, SELECTs with their FROM
//! clauses (tables, joins, subqueries, UNNEST, table-valued functions, PIVOT, UNPIVOT,
//! TABLESAMPLE, FOR SYSTEM_TIME AS OF, aliases), and expressions only as far as finding the
//! subqueries, `TABLE t` and `MODEL m` inside them. Names are resolved as BigQuery does:
//! a one-part name is a CTE in scope (a non-recursive CTE is not in scope in its own
//! definition), then a temporary table of the script, then a table; a path whose first part
//! is a range variable in scope (`t.arr` after `FROM d.t AS t`) is a path into that row.
//!
//! Where it meets a shape it cannot place, it reads the rest of the statement by keywords
//! alone and marks the answer lenient. It recurses only into queries, at most `MAX_DEPTH`
//! deep, and otherwise moves forward, so any input ends in time linear in its tokens.

use std::collections::{BTreeSet, HashSet};

use super::lexer::{self, Kw, Tok, Token, Tokens};
use super::names::{normalize, read_path};
use super::{Defaults, SqlError};

pub const MAX_DEPTH: usize = 256;

/// BigQuery's reserved keywords: they cannot start a table name or be an alias unquoted.
const RESERVED: &[Kw] = &[
    Kw::ALL,
    Kw::AND,
    Kw::ANY,
    Kw::ARRAY,
    Kw::AS,
    Kw::ASC,
    Kw::ASSERT_ROWS_MODIFIED,
    Kw::AT,
    Kw::BETWEEN,
    Kw::BY,
    Kw::CASE,
    Kw::CAST,
    Kw::COLLATE,
    Kw::CONTAINS,
    Kw::CREATE,
    Kw::CROSS,
    Kw::CUBE,
    Kw::CURRENT,
    Kw::DEFAULT,
    Kw::DEFINE,
    Kw::DESC,
    Kw::DISTINCT,
    Kw::ELSE,
    Kw::END,
    Kw::ENUM,
    Kw::ESCAPE,
    Kw::EXCEPT,
    Kw::EXCLUDE,
    Kw::EXISTS,
    Kw::EXTRACT,
    Kw::FALSE,
    Kw::FETCH,
    Kw::FOLLOWING,
    Kw::FOR,
    Kw::FROM,
    Kw::FULL,
    Kw::GROUP,
    Kw::GROUPING,
    Kw::GROUPS,
    Kw::HASH,
    Kw::HAVING,
    Kw::IF,
    Kw::IGNORE,
    Kw::IN,
    Kw::INNER,
    Kw::INTERSECT,
    Kw::INTERVAL,
    Kw::INTO,
    Kw::IS,
    Kw::JOIN,
    Kw::LATERAL,
    Kw::LEFT,
    Kw::LIKE,
    Kw::LIMIT,
    Kw::LOOKUP,
    Kw::MERGE,
    Kw::NATURAL,
    Kw::NEW,
    Kw::NO,
    Kw::NOT,
    Kw::NULL,
    Kw::NULLS,
    Kw::OF,
    Kw::ON,
    Kw::OR,
    Kw::ORDER,
    Kw::OUTER,
    Kw::OVER,
    Kw::PARTITION,
    Kw::PRECEDING,
    Kw::PROTO,
    Kw::QUALIFY,
    Kw::RANGE,
    Kw::RECURSIVE,
    Kw::RESPECT,
    Kw::RIGHT,
    Kw::ROLLUP,
    Kw::ROWS,
    Kw::SELECT,
    Kw::SET,
    Kw::SOME,
    Kw::STRUCT,
    Kw::TABLESAMPLE,
    Kw::THEN,
    Kw::TO,
    Kw::TREAT,
    Kw::TRUE,
    Kw::UNBOUNDED,
    Kw::UNION,
    Kw::UNNEST,
    Kw::USING,
    Kw::WHEN,
    Kw::WHERE,
    Kw::WINDOW,
    Kw::WITH,
    Kw::WITHIN,
];

fn is_reserved(tok: &Tok) -> bool {
    tok.kw.is_some_and(|k| RESERVED.contains(&k))
}

/// What the reader found.
#[derive(Debug, Default)]
pub(crate) struct Output {
    pub reads: BTreeSet<String>,
    pub writes: BTreeSet<String>,
    pub lenient: bool,
    pub unknowable: Vec<String>,
    pub parameters: BTreeSet<String>,
}

enum Frame {
    /// CTE names in scope, lowercase.
    Ctes(Vec<String>),
    /// Range variables in scope, lowercase.
    Aliases(Vec<String>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Read,
    Write,
}

type R<T = ()> = Result<T, SqlError>;

pub(crate) struct Reader<'a> {
    sql: &'a str,
    toks: &'a [Tok],
    partner: &'a [usize],
    defaults: &'a Defaults,
    frames: Vec<Frame>,
    /// Temporary tables the script has created so far, lowercase.
    temp: &'a mut HashSet<String>,
    depth: usize,
    nesting: usize,
    pub out: Output,
}

/// Reads a whole text. `temp` carries temporary tables across EXECUTE IMMEDIATE texts.
pub(crate) fn read(
    sql: &str,
    defaults: &Defaults,
    temp: &mut HashSet<String>,
    nesting: usize,
) -> R<Output> {
    let tokens = Tokens::new(sql)?;
    if tokens.toks.is_empty() {
        return Err(SqlError {
            line: 1,
            column: 1,
            message: "there is no SQL statement here".into(),
        });
    }
    let mut reader = Reader {
        sql,
        toks: &tokens.toks,
        partner: &tokens.partner,
        defaults,
        frames: Vec::new(),
        temp,
        depth: 0,
        nesting,
        out: Output::default(),
    };
    reader.statements(0, tokens.toks.len())?;
    for tok in &tokens.toks {
        if tok.token == Token::Word
            && sql.as_bytes()[tok.start as usize] == b'@'
            && let Some(name) = lexer::text(sql, tok).strip_prefix('@')
            && !name.is_empty()
            && !name.starts_with('@')
        {
            reader.out.parameters.insert(name.to_lowercase());
        }
    }
    Ok(reader.out)
}

impl<'a> Reader<'a> {
    // -----------------------------------------------------------------------------------------
    // Looking at tokens

    fn word(&self, i: usize) -> Option<&'a str> {
        let sql = self.sql;
        self.toks
            .get(i)
            .filter(|t| t.token == Token::Word)
            .map(|t| lexer::text(sql, t))
    }

    /// The keyword at `i`, if a word there is one.
    fn kw(&self, i: usize) -> Option<Kw> {
        self.toks.get(i).and_then(|t| t.kw)
    }

    fn is(&self, i: usize, keyword: Kw) -> bool {
        self.kw(i) == Some(keyword)
    }

    fn is_any(&self, i: usize, keywords: &[Kw]) -> bool {
        self.kw(i).is_some_and(|k| keywords.contains(&k))
    }

    fn punct(&self, i: usize, token: &Token) -> bool {
        self.toks.get(i).is_some_and(|t| t.token == *token)
    }

    /// A name usable as an alias: quoted, or an unquoted word that is neither reserved nor
    /// one of the non-reserved words that continue a FROM item.
    fn alias_at(&self, i: usize) -> Option<String> {
        let tok = self.toks.get(i)?;
        let name = lexer::name(self.sql, tok);
        match tok.token {
            Token::Quoted => Some(name.to_lowercase()),
            Token::Word
                if !name.starts_with('@')
                    && !is_reserved(tok)
                    && !matches!(
                        tok.kw,
                        Some(Kw::PIVOT | Kw::UNPIVOT | Kw::MATCH_RECOGNIZE | Kw::TABLESAMPLE)
                    ) =>
            {
                Some(name.to_lowercase())
            }
            _ => None,
        }
    }

    /// The index after the token at `i`, stepping over a whole bracket group.
    fn step(&self, i: usize) -> usize {
        match self.toks[i].token {
            Token::LParen | Token::LBracket => self.partner[i] + 1,
            _ => i + 1,
        }
    }

    /// The first index in `start..end`, outside brackets, where `found` holds; else `end`.
    fn find(&self, start: usize, end: usize, found: impl Fn(&Self, usize) -> bool) -> usize {
        let mut i = start;
        while i < end {
            if found(self, i) {
                return i;
            }
            i = self.step(i);
        }
        end
    }

    /// Whether a query starts at `i`, looking through a few opening brackets. The look is
    /// bounded so that reading stays linear: a query under more brackets is found when the
    /// reader steps into them.
    fn starts_query(&self, mut i: usize, end: usize) -> bool {
        let limit = i + 16;
        while i < end && i < limit && self.punct(i, &Token::LParen) {
            i += 1;
        }
        i < end && self.is_any(i, &[Kw::SELECT, Kw::WITH, Kw::FROM])
    }

    fn place(&self, i: usize) -> String {
        let t = &self.toks[i.min(self.toks.len() - 1)];
        format!("line {}", lexer::location(self.sql, t.start).0)
    }

    fn enter(&mut self, i: usize) -> R {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(lexer::error_at(
                self.sql,
                &self.toks[i.min(self.toks.len() - 1)],
                format!("the SQL nests queries deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Names

    fn is_cte(&self, name: &str) -> bool {
        self.frames.iter().rev().any(|f| match f {
            Frame::Ctes(names) => names.iter().any(|n| n == name),
            Frame::Aliases(_) => false,
        })
    }

    fn is_alias(&self, name: &str) -> bool {
        self.frames.iter().rev().any(|f| match f {
            Frame::Aliases(names) => names.iter().any(|n| n == name),
            Frame::Ctes(_) => false,
        })
    }

    fn add_alias(&mut self, name: String) {
        for frame in self.frames.iter_mut().rev() {
            if let Frame::Aliases(names) = frame {
                names.push(name);
                return;
            }
        }
    }

    fn add_cte(&mut self, name: String) {
        if let Some(Frame::Ctes(names)) = self
            .frames
            .iter_mut()
            .rev()
            .find(|f| matches!(f, Frame::Ctes(_)))
        {
            names.push(name);
        }
    }

    /// Records a name used as a table, unless it is a CTE, a temporary table or a path into
    /// a row in scope.
    fn table(&mut self, parts: &[String], how: Use) {
        let first = parts[0].to_lowercase();
        match parts.len() {
            1 if how == Use::Read && self.is_cte(&first) => return,
            1 if self.temp.contains(&first) => return,
            2 if first == "_session" => return,
            n if n > 1 && how == Use::Read && self.is_alias(&first) => return,
            _ => {}
        }
        let name = normalize(parts, self.defaults);
        match how {
            Use::Read => self.out.reads.insert(name),
            Use::Write => self.out.writes.insert(name),
        };
    }

    fn path_at(&self, i: usize, end: usize) -> Option<super::names::Path> {
        read_path(self.sql, self.toks, i, end, is_reserved)
    }

    // -----------------------------------------------------------------------------------------
    // Scripts and statements

    fn statements(&mut self, start: usize, end: usize) -> R {
        let mut i = start;
        while i < end {
            if self.punct(i, &Token::SemiColon) {
                i += 1;
            } else if self.word(i).is_some()
                && self.punct(i + 1, &Token::Colon)
                && self.is_any(
                    i + 2,
                    &[Kw::BEGIN, Kw::LOOP, Kw::WHILE, Kw::REPEAT, Kw::FOR],
                )
            {
                i += 2; // a label
            } else if self.is_any(i, &[Kw::IF, Kw::ELSEIF]) {
                // At the start of a statement IF is the IF statement, whatever follows.
                let then = self.find_then(i + 1, end);
                self.expr(i + 1, then)?;
                i = then + 1;
            } else if self.is_any(i, &[Kw::ELSE, Kw::LOOP, Kw::REPEAT]) {
                i += 1;
            } else if self.is(i, Kw::END) {
                i += 1;
                if self.is_any(i, &[Kw::IF, Kw::LOOP, Kw::WHILE, Kw::FOR, Kw::REPEAT]) {
                    i += 1;
                }
                if self.word(i).is_some()
                    && !self.is_any(i, &[Kw::ELSE, Kw::ELSEIF, Kw::END, Kw::EXCEPTION, Kw::WHEN])
                    && self.punct(i + 1, &Token::SemiColon)
                {
                    i += 1; // the label of `END LOOP label;`
                }
            } else if self.is(i, Kw::WHILE) {
                let body = self.find(i + 1, end, |s, k| s.is(k, Kw::DO));
                self.expr(i + 1, body)?;
                i = body + 1;
            } else if self.is(i, Kw::UNTIL) {
                let stop = self.find(i + 1, end, |s, k| s.is(k, Kw::END));
                self.expr(i + 1, stop)?;
                i = stop;
            } else if self.is(i, Kw::FOR) && self.is(i + 2, Kw::IN) {
                let body = self.find(i + 3, end, |s, k| s.is(k, Kw::DO));
                self.expr(i + 3, body)?;
                i = body + 1;
            } else if self.is(i, Kw::BEGIN) {
                i += 1;
                if self.is(i, Kw::TRANSACTION) {
                    i += 1;
                }
            } else if self.is(i, Kw::EXCEPTION) && self.is(i + 1, Kw::WHEN) {
                i = self.find(i + 2, end, |s, k| s.is(k, Kw::THEN)) + 1;
            } else {
                i = self.statement(i, end)?;
            }
        }
        Ok(())
    }

    /// The `THEN` of an `IF` or `ELSEIF` condition, past any CASE in it.
    fn find_then(&self, start: usize, end: usize) -> usize {
        let mut cases = 0usize;
        let mut i = start;
        while i < end {
            if self.is(i, Kw::CASE) {
                cases += 1;
            } else if self.is(i, Kw::END) && cases > 0 {
                cases -= 1;
            } else if self.is(i, Kw::THEN) && cases == 0 {
                return i;
            }
            i = self.step(i);
        }
        end
    }

    /// Reads one statement from `start`; returns where the next one may begin.
    fn statement(&mut self, start: usize, end: usize) -> R<usize> {
        let stop = self.find(start, end, |s, k| s.punct(k, &Token::SemiColon));
        if self.punct(start, &Token::LParen) {
            self.query(start, stop)?;
            return Ok(stop);
        }
        match self.kw(start) {
            Some(Kw::SELECT | Kw::WITH | Kw::FROM) => self.query(start, stop)?,
            Some(Kw::INSERT) => self.insert(start + 1, stop)?,
            Some(Kw::UPDATE) => self.update(start + 1, stop)?,
            Some(Kw::DELETE) => self.delete(start + 1, stop)?,
            Some(Kw::MERGE) => self.merge(start + 1, stop)?,
            Some(Kw::TRUNCATE) => {
                let i = if self.is(start + 1, Kw::TABLE) {
                    start + 2
                } else {
                    start + 1
                };
                self.target(i, stop, Use::Write);
            }
            Some(Kw::CREATE) => return self.create(start + 1, stop, end),
            Some(Kw::DROP) => self.drop(start + 1, stop),
            Some(Kw::ALTER) => self.alter(start + 1, stop),
            Some(Kw::EXPORT) => self.export(start + 1, stop)?,
            Some(Kw::LOAD) => self.load(start + 1, stop),
            Some(Kw::DECLARE | Kw::SET | Kw::ASSERT | Kw::RAISE | Kw::RETURN) => {
                self.expr(start + 1, stop)?
            }
            Some(Kw::EXECUTE) => self.execute_immediate(start + 1, stop)?,
            Some(Kw::CALL) => {
                let name = self
                    .path_at(start + 1, stop)
                    .map(|p| normalize(&p.parts, self.defaults))
                    .unwrap_or_default();
                self.out.unknowable.push(format!(
                    "{}: CALL {name}: what a procedure reads is not in this SQL",
                    self.place(start)
                ));
                self.expr(start + 1, stop)?;
            }
            Some(
                Kw::BREAK
                | Kw::LEAVE
                | Kw::CONTINUE
                | Kw::ITERATE
                | Kw::COMMIT
                | Kw::ROLLBACK
                | Kw::GRANT
                | Kw::REVOKE
                | Kw::UNDROP,
            ) => {}
            _ => self.lenient(start, stop),
        }
        Ok(stop)
    }

    /// A statement's target table: read or written, or a temporary table of the script.
    fn target(&mut self, i: usize, end: usize, how: Use) -> Option<usize> {
        let path = self.path_at(i, end)?;
        self.table(&path.parts, how);
        Some(path.next)
    }

    fn insert(&mut self, mut i: usize, end: usize) -> R {
        if self.is(i, Kw::INTO) {
            i += 1;
        }
        let Some(mut j) = self.target(i, end, Use::Write) else {
            self.lenient(i, end);
            return Ok(());
        };
        if self.punct(j, &Token::LParen) && !self.starts_query(j + 1, self.partner[j]) {
            j = self.partner[j] + 1; // the column list
        }
        if self.starts_query(j, end) {
            self.query(j, end)
        } else {
            self.expr(j, end)
        }
    }

    /// `alias` after a DML target: `AS x` or a bare `x`; the table's own name otherwise.
    fn target_alias(&mut self, i: usize, parts: &[String]) -> usize {
        if self.is(i, Kw::AS) {
            if let Some(alias) = self.alias_at(i + 1) {
                self.add_alias(alias);
            }
            return i + 2;
        }
        if let Some(alias) = self.alias_at(i) {
            self.add_alias(alias);
            return i + 1;
        }
        if let Some(last) = parts.last() {
            self.add_alias(last.to_lowercase());
        }
        i
    }

    /// The target of UPDATE, DELETE or MERGE at `i` (after `keyword`, which may be left out):
    /// written, then the rest of the statement read by `rest` with the target's alias in
    /// scope. A target that is not a path leaves the statement to the lenient reading.
    fn dml(
        &mut self,
        mut i: usize,
        end: usize,
        keyword: Option<Kw>,
        rest: fn(&mut Self, super::names::Path, usize) -> R,
    ) -> R {
        if keyword.is_some_and(|k| self.is(i, k)) {
            i += 1;
        }
        let Some(path) = self.path_at(i, end) else {
            self.lenient(i, end);
            return Ok(());
        };
        self.table(&path.parts, Use::Write);
        self.frames.push(Frame::Aliases(Vec::new()));
        let result = rest(self, path, end);
        self.frames.pop();
        result
    }

    fn update(&mut self, i: usize, end: usize) -> R {
        self.dml(i, end, None, Self::update_rest)
    }

    fn update_rest(&mut self, path: super::names::Path, end: usize) -> R {
        let j = self.target_alias(path.next, &path.parts);
        let from = self.find(j, end, |s, k| s.is(k, Kw::FROM));
        let filter = self.find(j, end, |s, k| s.is(k, Kw::WHERE));
        if from < filter {
            self.read_from_items(from + 1, filter)?;
        }
        self.expr(j, from.min(filter))?;
        self.expr(filter, end)
    }

    fn delete(&mut self, i: usize, end: usize) -> R {
        self.dml(i, end, Some(Kw::FROM), |s, path, end| {
            let j = s.target_alias(path.next, &path.parts);
            s.expr(j, end)
        })
    }

    fn merge(&mut self, i: usize, end: usize) -> R {
        self.dml(i, end, Some(Kw::INTO), Self::merge_rest)
    }

    fn merge_rest(&mut self, path: super::names::Path, end: usize) -> R {
        let j = self.target_alias(path.next, &path.parts);
        let using = self.find(j, end, |s, k| s.is(k, Kw::USING));
        if using >= end {
            self.lenient(j, end);
            return Ok(());
        }
        let after = self.table_factor(using + 1, end)?;
        self.expr(after, end)
    }

    fn create(&mut self, mut i: usize, stop: usize, end: usize) -> R<usize> {
        if self.is(i, Kw::OR) && self.is(i + 1, Kw::REPLACE) {
            i += 2;
        }
        let temporary = self.is_any(i, &[Kw::TEMP, Kw::TEMPORARY]);
        if temporary {
            i += 1;
        }
        while self.is_any(
            i,
            &[Kw::EXTERNAL, Kw::SNAPSHOT, Kw::MATERIALIZED, Kw::AGGREGATE],
        ) {
            i += 1;
        }
        let kind = self.kw(i);
        i += 1;
        if kind == Some(Kw::TABLE) && self.is(i, Kw::FUNCTION) {
            i += 1;
            self.skip_if_not_exists(&mut i);
            self.rest_of_definition(i, stop)?;
            return Ok(stop);
        }
        if kind == Some(Kw::PROCEDURE) {
            // The body runs when the procedure is called, not when it is created.
            let begin = self.find(i, end, |s, k| s.is(k, Kw::BEGIN));
            return Ok(self.block_end(begin, end));
        }
        self.skip_if_not_exists(&mut i);
        match kind {
            Some(Kw::TABLE | Kw::VIEW | Kw::MODEL) => {
                let Some(path) = self.path_at(i, stop) else {
                    self.lenient(i, stop);
                    return Ok(stop);
                };
                if temporary {
                    self.temp
                        .insert(path.parts[path.parts.len() - 1].to_lowercase());
                } else {
                    self.table(&path.parts, Use::Write);
                }
                self.rest_of_definition(path.next, stop)?;
            }
            Some(Kw::FUNCTION) => {
                // A SQL function's body runs where it is called: what it reads is read.
                if let Some(path) = self.path_at(i, stop) {
                    self.expr(path.next, stop)?;
                }
            }
            _ => {} // schemas, row access policies, indexes, reservations: no table is read
        }
        Ok(stop)
    }

    fn skip_if_not_exists(&self, i: &mut usize) {
        if self.is(*i, Kw::IF) && self.is(*i + 1, Kw::NOT) && self.is(*i + 2, Kw::EXISTS) {
            *i += 3;
        }
    }

    /// After a created object's name: `CLONE`/`COPY`/`LIKE` a table, `AS` a query, and
    /// subqueries anywhere (a model's training data).
    fn rest_of_definition(&mut self, start: usize, end: usize) -> R {
        let mut i = start;
        while i < end {
            if self.is_any(i, &[Kw::CLONE, Kw::COPY, Kw::LIKE])
                && let Some(path) = self.path_at(i + 1, end)
            {
                self.table(&path.parts, Use::Read);
                i = path.next;
                continue;
            }
            if self.is(i, Kw::AS) && self.starts_query(i + 1, end) {
                return self.query(i + 1, end);
            }
            if self.punct(i, &Token::LParen) {
                let close = self.partner[i];
                self.expr(i, close + 1)?;
                i = close + 1;
                continue;
            }
            i += 1;
        }
        Ok(())
    }

    /// The index after the `END` closing the block that opens at `begin`.
    fn block_end(&self, begin: usize, end: usize) -> usize {
        let mut open = 0usize;
        let mut i = begin;
        while i < end {
            if self.is(i, Kw::END) {
                open = open.saturating_sub(1);
                if self.is_any(i + 1, &[Kw::IF, Kw::LOOP, Kw::WHILE, Kw::FOR, Kw::REPEAT]) {
                    i += 1;
                }
                if open == 0 {
                    return i + 1;
                }
            } else if (self.is(i, Kw::BEGIN) && !self.is(i + 1, Kw::TRANSACTION))
                || self.is_any(i, &[Kw::CASE, Kw::LOOP, Kw::WHILE, Kw::REPEAT])
                || (self.is(i, Kw::IF)
                    && !self.punct(i + 1, &Token::LParen)
                    && !self.is_any(i + 1, &[Kw::NOT, Kw::EXISTS]))
                || (self.is(i, Kw::FOR) && !self.is(i + 1, Kw::SYSTEM_TIME))
            {
                open += 1;
            }
            i = self.step(i);
        }
        end
    }

    fn drop(&mut self, mut i: usize, end: usize) {
        while self.is_any(i, &[Kw::SNAPSHOT, Kw::EXTERNAL, Kw::MATERIALIZED]) {
            i += 1;
        }
        if !self.is_any(i, &[Kw::TABLE, Kw::VIEW, Kw::MODEL]) {
            return;
        }
        i += 1;
        if self.is(i, Kw::IF) && self.is(i + 1, Kw::EXISTS) {
            i += 2;
        }
        self.target(i, end, Use::Write);
    }

    fn alter(&mut self, mut i: usize, end: usize) {
        if self.is(i, Kw::MATERIALIZED) {
            i += 1;
        }
        if !self.is_any(i, &[Kw::TABLE, Kw::VIEW, Kw::MODEL]) {
            return;
        }
        i += 1;
        if self.is(i, Kw::IF) && self.is(i + 1, Kw::EXISTS) {
            i += 2;
        }
        self.target(i, end, Use::Write);
    }

    fn export(&mut self, i: usize, end: usize) -> R {
        if self.is(i, Kw::MODEL) {
            self.target(i + 1, end, Use::Read);
            return Ok(());
        }
        let body = self.find(i, end, |s, k| s.is(k, Kw::AS) && s.starts_query(k + 1, end));
        if body < end {
            self.query(body + 1, end)?;
        }
        Ok(())
    }

    fn load(&mut self, mut i: usize, end: usize) {
        if !self.is(i, Kw::DATA) {
            return;
        }
        i += 1;
        if self.is_any(i, &[Kw::INTO, Kw::OVERWRITE]) {
            i += 1;
        }
        if self.is_any(i, &[Kw::TEMP, Kw::TEMPORARY]) && self.is(i + 1, Kw::TABLE) {
            if let Some(path) = self.path_at(i + 2, end) {
                self.temp
                    .insert(path.parts[path.parts.len() - 1].to_lowercase());
            }
            return;
        }
        self.target(i, end, Use::Write);
    }

    /// `EXECUTE IMMEDIATE 'literal'` is read as the SQL it is; anything computed cannot be.
    fn execute_immediate(&mut self, mut i: usize, end: usize) -> R {
        if self.is(i, Kw::IMMEDIATE) {
            i += 1;
        }
        let literal = match self.toks.get(i) {
            Some(
                t @ Tok {
                    token: Token::Str { .. },
                    ..
                },
            ) if i + 1 >= end || self.is_any(i + 1, &[Kw::INTO, Kw::USING]) => {
                Some(lexer::string_value(self.sql, t))
            }
            _ => None,
        };
        match literal {
            Some(sql) if self.nesting < 4 => {
                match read(&sql, self.defaults, self.temp, self.nesting + 1) {
                    Ok(inner) => {
                        self.out.reads.extend(inner.reads);
                        self.out.writes.extend(inner.writes);
                        self.out.lenient |= inner.lenient;
                        self.out.unknowable.extend(inner.unknowable);
                        self.out.parameters.extend(inner.parameters);
                    }
                    Err(e) => {
                        self.out.lenient = true;
                        self.out.unknowable.push(format!(
                            "{}: EXECUTE IMMEDIATE of SQL that does not read: {e}",
                            self.place(i)
                        ));
                    }
                }
                self.expr(i + 1, end)
            }
            _ => {
                self.out.unknowable.push(format!(
                    "{}: EXECUTE IMMEDIATE of SQL computed when it runs: what it reads is not in this SQL",
                    self.place(i)
                ));
                self.expr(i, end)
            }
        }
    }

    /// The rest of a statement read by keywords alone: names after FROM, JOIN, USING and
    /// TABLE are read, after INTO and UPDATE written, after MODEL read as models.
    fn lenient(&mut self, start: usize, end: usize) {
        self.out.lenient = true;
        // Names defined as `name AS (` are taken for CTEs.
        let mut ctes = Vec::new();
        for i in start..end.saturating_sub(2) {
            if self.is(i + 1, Kw::AS)
                && self.punct(i + 2, &Token::LParen)
                && let Some(name) = self.alias_at(i)
            {
                ctes.push(name);
            }
        }
        self.frames.push(Frame::Ctes(ctes));
        let mut i = start;
        while i < end {
            let how = if self.is_any(i, &[Kw::FROM, Kw::JOIN, Kw::USING, Kw::TABLE, Kw::MODEL]) {
                Some(Use::Read)
            } else if self.is_any(i, &[Kw::INTO, Kw::UPDATE]) {
                Some(Use::Write)
            } else {
                None
            };
            if let Some(how) = how
                && let Some(path) = self.path_at(i + 1, end)
                && !self.punct(path.next, &Token::LParen)
            {
                self.table(&path.parts, how);
                i = path.next;
                continue;
            }
            i += 1;
        }
        self.frames.pop();
    }

    // -----------------------------------------------------------------------------------------
    // Queries

    fn query(&mut self, start: usize, end: usize) -> R {
        self.enter(start)?;
        self.frames.push(Frame::Ctes(Vec::new()));
        let result = self.query_inner(start, end);
        self.frames.pop();
        self.depth -= 1;
        result
    }

    fn query_inner(&mut self, start: usize, end: usize) -> R {
        let mut i = start;
        if self.is(i, Kw::WITH) {
            i += 1;
            let recursive = self.is(i, Kw::RECURSIVE);
            if recursive {
                i += 1;
            }
            loop {
                let Some(name) = self
                    .alias_at(i)
                    .or_else(|| self.word(i).map(str::to_lowercase))
                else {
                    self.lenient(i, end);
                    return Ok(());
                };
                i += 1;
                if self.punct(i, &Token::LParen) && self.is(self.partner[i] + 1, Kw::AS) {
                    i = self.partner[i] + 1; // a column list
                }
                if !self.is(i, Kw::AS) || !self.punct(i + 1, &Token::LParen) {
                    self.lenient(i, end);
                    return Ok(());
                }
                let open = i + 1;
                let close = self.partner[open];
                if recursive {
                    self.add_cte(name);
                    self.query(open + 1, close)?;
                } else {
                    self.query(open + 1, close)?;
                    self.add_cte(name);
                }
                i = close + 1;
                if self.punct(i, &Token::Comma) {
                    i += 1;
                } else {
                    break;
                }
            }
        }
        self.frames.push(Frame::Aliases(Vec::new()));
        let result = self.body(i, end);
        self.frames.pop();
        result
    }

    /// Terms joined by set operations, then ORDER BY and LIMIT, then pipe operators.
    fn body(&mut self, start: usize, end: usize) -> R {
        let mut i = start;
        loop {
            if i >= end {
                return Ok(());
            }
            if self.punct(i, &Token::LParen) {
                let close = self.partner[i];
                if self.starts_query(i + 1, close) {
                    self.query(i + 1, close)?;
                } else {
                    self.expr(i, close + 1)?;
                }
                i = close + 1;
            } else if self.is(i, Kw::SELECT) {
                let stop = self.select_end(i + 1, end);
                self.select(i + 1, stop)?;
                i = stop;
            } else if self.is(i, Kw::FROM) {
                // A pipe query: its range variables stay in scope for the pipes.
                let stop = self.find(i + 1, end, |s, k| {
                    s.punct(k, &Token::Pipe) || s.set_operation(k, end).is_some()
                });
                self.read_from_items(i + 1, stop)?;
                i = stop;
            } else {
                // A term the reader cannot place (`MAGIC SELECT …`, `UNION ALL junk`).
                self.lenient(i, end);
                return Ok(());
            }
            match self.set_operation(i, end) {
                Some(next) => i = next,
                None => break,
            }
        }
        let pipe = self.find(i, end, |s, k| s.punct(k, &Token::Pipe));
        self.expr(i, pipe)?;
        self.pipes(pipe, end)
    }

    /// At a set operation (`UNION ALL`, `EXCEPT DISTINCT`, `LEFT UNION ALL BY NAME`, …), the
    /// index of the next term.
    fn set_operation(&self, i: usize, end: usize) -> Option<usize> {
        let mut j = i;
        while self.is_any(j, &[Kw::LEFT, Kw::FULL, Kw::INNER, Kw::OUTER]) {
            j += 1;
        }
        if !self.is_any(j, &[Kw::UNION, Kw::INTERSECT, Kw::EXCEPT]) {
            return None;
        }
        if !self.is_any(j + 1, &[Kw::ALL, Kw::DISTINCT]) {
            return None; // `* EXCEPT (a)` in a select list
        }
        j += 2;
        while j < end {
            if self.is_any(j, &[Kw::CORRESPONDING, Kw::STRICT, Kw::BY, Kw::NAME]) {
                j += 1;
            } else if self.is(j, Kw::ON) && self.punct(j + 1, &Token::LParen) {
                j = self.partner[j + 1] + 1;
            } else {
                break;
            }
        }
        Some(j)
    }

    fn pipes(&mut self, start: usize, end: usize) -> R {
        let mut i = start;
        while i < end {
            // At `|>`.
            let next = self.find(i + 1, end, |s, k| s.punct(k, &Token::Pipe));
            let op = i + 1;
            if let Some(after_join) = self.join_keyword(op, next) {
                let j = self.table_factor(after_join, next)?;
                self.expr(j, next)?;
            } else if self.is_any(op, &[Kw::UNION, Kw::INTERSECT, Kw::EXCEPT]) {
                self.expr(op + 1, next)?; // each `(query)` is found as a subquery
            } else if self.is(op, Kw::AS) {
                if let Some(alias) = self.alias_at(op + 1) {
                    self.add_alias(alias);
                }
            } else if self.is(op, Kw::CALL) {
                if let Some(path) = self.path_at(op + 1, next)
                    && self.punct(path.next, &Token::LParen)
                {
                    let close = self.partner[path.next];
                    self.function_args(path.next + 1, close)?;
                }
            } else {
                self.expr(op, next)?;
            }
            i = next;
        }
        Ok(())
    }

    /// Where the SELECT starting at `start` (after the keyword) ends.
    fn select_end(&self, start: usize, end: usize) -> usize {
        self.find(start, end, |s, k| {
            s.punct(k, &Token::SemiColon)
                || s.punct(k, &Token::Pipe)
                || (s.is(k, Kw::ORDER) && s.is(k + 1, Kw::BY))
                || s.is(k, Kw::LIMIT)
                || s.set_operation(k, end).is_some()
        })
    }

    /// A SELECT's clauses: its FROM clause is read first, so that subqueries in the select
    /// list and the other clauses see its range variables.
    fn select(&mut self, start: usize, end: usize) -> R {
        self.frames.push(Frame::Aliases(Vec::new()));
        let result = self.select_inner(start, end);
        self.frames.pop();
        result
    }

    fn select_inner(&mut self, start: usize, end: usize) -> R {
        let from = self.find(start, end, |s, k| s.is(k, Kw::FROM));
        if from >= end {
            return self.expr(start, end);
        }
        let from_end = self.find(from + 1, end, |s, k| {
            s.is_any(
                k,
                &[Kw::WHERE, Kw::GROUP, Kw::HAVING, Kw::QUALIFY, Kw::WINDOW],
            )
        });
        self.read_from_items(from + 1, from_end)?;
        self.expr(start, from)?;
        self.expr(from_end, end)
    }

    /// At a join's first keyword, the index after `JOIN`.
    fn join_keyword(&self, i: usize, end: usize) -> Option<usize> {
        let mut j = i;
        while j < end {
            if self.is(j, Kw::JOIN) {
                return Some(j + 1);
            }
            let modifier = self.is_any(
                j,
                &[
                    Kw::INNER,
                    Kw::CROSS,
                    Kw::FULL,
                    Kw::OUTER,
                    Kw::NATURAL,
                    Kw::HASH,
                    Kw::LOOKUP,
                ],
            ) || (self.is_any(j, &[Kw::LEFT, Kw::RIGHT])
                && !self.punct(j + 1, &Token::LParen));
            if !modifier {
                return None;
            }
            j += 1;
        }
        None
    }

    /// FROM items separated by commas and joins; their range variables go to the innermost
    /// alias frame.
    fn read_from_items(&mut self, start: usize, end: usize) -> R {
        if start >= end {
            return Err(lexer::error_at(
                self.sql,
                &self.toks[start.saturating_sub(1).min(self.toks.len() - 1)],
                "FROM names no table",
            ));
        }
        let mut i = self.table_factor(start, end)?;
        while i < end {
            if self.punct(i, &Token::Comma) {
                i = self.table_factor(i + 1, end)?;
            } else if let Some(j) = self.join_keyword(i, end) {
                i = self.table_factor(j, end)?;
                if self.is(i, Kw::ON) {
                    let stop = self.find(i + 1, end, |s, k| {
                        s.punct(k, &Token::Comma) || s.join_keyword(k, end).is_some()
                    });
                    self.expr(i + 1, stop)?;
                    i = stop;
                } else if self.is(i, Kw::USING) && self.punct(i + 1, &Token::LParen) {
                    i = self.partner[i + 1] + 1;
                }
            } else {
                self.lenient(i, end);
                return Ok(());
            }
        }
        Ok(())
    }

    /// One FROM item, with what may follow it; returns the index after it.
    fn table_factor(&mut self, i: usize, end: usize) -> R<usize> {
        if i >= end {
            return Err(lexer::error_at(
                self.sql,
                &self.toks[i.saturating_sub(1).min(self.toks.len() - 1)],
                "a table is missing after this",
            ));
        }
        let mut j;
        let mut implicit_alias = None;
        if self.punct(i, &Token::LParen) {
            let close = self.partner[i];
            if self.starts_query(i + 1, close) {
                self.query(i + 1, close)?;
            } else {
                // A parenthesised join.
                self.enter(i)?;
                self.read_from_items(i + 1, close)?;
                self.depth -= 1;
            }
            j = close + 1;
        } else if self.is(i, Kw::UNNEST) && self.punct(i + 1, &Token::LParen) {
            let close = self.partner[i + 1];
            self.expr(i + 2, close)?;
            j = close + 1;
        } else if let Some(path) = self.path_at(i, end) {
            j = path.next;
            if self.punct(j, &Token::LParen) {
                // A table-valued function: not a table, but its arguments may name some.
                let close = self.partner[j];
                self.function_args(j + 1, close)?;
                j = close + 1;
            } else {
                self.table(&path.parts, Use::Read);
                implicit_alias = path
                    .parts
                    .last()
                    .map(|p| p.trim_end_matches('*').to_lowercase());
            }
        } else {
            self.lenient(i, end);
            return Ok(end);
        }
        let mut aliased = false;
        loop {
            if self.is(j, Kw::FOR)
                && self.is(j + 1, Kw::SYSTEM_TIME)
                && self.is(j + 2, Kw::AS)
                && self.is(j + 3, Kw::OF)
            {
                let stop = self.operand_end(j + 4, end);
                self.expr(j + 4, stop)?;
                j = stop;
            } else if self.is(j, Kw::TABLESAMPLE) {
                j += 1;
                if self.word(j).is_some() && self.punct(j + 1, &Token::LParen) {
                    j += 1;
                }
                if self.punct(j, &Token::LParen) {
                    j = self.partner[j] + 1;
                }
            } else if self.is_any(j, &[Kw::PIVOT, Kw::UNPIVOT, Kw::MATCH_RECOGNIZE]) {
                let mut k = j + 1;
                if self.is_any(k, &[Kw::INCLUDE, Kw::EXCLUDE]) && self.is(k + 1, Kw::NULLS) {
                    k += 2;
                }
                if !self.punct(k, &Token::LParen) {
                    break;
                }
                self.expr(k + 1, self.partner[k])?;
                j = self.partner[k] + 1;
                aliased = false;
                implicit_alias = None;
            } else if self.is(j, Kw::WITH) && self.is(j + 1, Kw::OFFSET) {
                j += 2;
                if self.is(j, Kw::AS) {
                    j += 1;
                }
                if let Some(alias) = self.alias_at(j) {
                    self.add_alias(alias);
                    j += 1;
                }
            } else if !aliased && self.is(j, Kw::AS) && self.alias_at(j + 1).is_some() {
                let alias = self.alias_at(j + 1).expect("checked");
                self.add_alias(alias);
                j += 2;
                aliased = true;
            } else if !aliased && let Some(alias) = self.alias_at(j).filter(|_| j < end) {
                self.add_alias(alias);
                j += 1;
                aliased = true;
            } else {
                break;
            }
        }
        if !aliased && let Some(alias) = implicit_alias {
            self.add_alias(alias);
        }
        Ok(j)
    }

    /// Where the operand of `FOR SYSTEM_TIME AS OF` ends: before an alias, a comma, a join
    /// or a clause.
    fn operand_end(&self, start: usize, end: usize) -> usize {
        let mut i = start;
        let mut expect_operand = true;
        while i < end {
            let t = &self.toks[i].token;
            let operator = matches!(
                t,
                Token::Plus | Token::Minus | Token::Mul | Token::Div | Token::Period
            );
            if operator {
                expect_operand = true;
                i += 1;
                continue;
            }
            if !expect_operand {
                // A complete operand followed by something else: `(`, a call, or the end.
                if self.punct(i, &Token::LParen) {
                    i = self.step(i);
                    continue;
                }
                return i;
            }
            if self.is_any(i, &[Kw::INTERVAL, Kw::TIMESTAMP, Kw::DATETIME, Kw::DATE]) {
                i += 1;
                continue;
            }
            if matches!(t, Token::Comma)
                || self.is_any(i, &[Kw::AS, Kw::ON, Kw::USING])
                || self.join_keyword(i, end).is_some()
            {
                return i;
            }
            i = self.step(i);
            // After an INTERVAL's number comes its unit.
            if self.is_any(
                i,
                &[
                    Kw::SECOND,
                    Kw::MINUTE,
                    Kw::HOUR,
                    Kw::DAY,
                    Kw::WEEK,
                    Kw::MONTH,
                    Kw::YEAR,
                ],
            ) {
                i += 1;
            }
            expect_operand = false;
        }
        end
    }

    /// A function's arguments: `TABLE t` and `MODEL m` name a table and a model; the rest
    /// are expressions.
    fn function_args(&mut self, start: usize, end: usize) -> R {
        let mut i = start;
        while i < end {
            let stop = self.find(i, end, |s, k| s.punct(k, &Token::Comma));
            if self.is_any(i, &[Kw::TABLE, Kw::MODEL])
                && let Some(path) = self.path_at(i + 1, stop)
            {
                self.table(&path.parts, Use::Read);
                self.expr_in(path.next, stop, 1)?;
            } else {
                self.expr_in(i, stop, 1)?;
            }
            i = stop + 1;
        }
        Ok(())
    }

    /// An expression, read only for the subqueries it holds, and the `TABLE t` and
    /// `MODEL m` arguments of the calls in it.
    fn expr(&mut self, start: usize, end: usize) -> R {
        self.expr_in(start, end, 0)
    }

    /// An expression that starts `groups` brackets deep (1 for a call's argument).
    fn expr_in(&mut self, start: usize, end: usize, mut groups: usize) -> R {
        let mut i = start;
        while i < end {
            match self.toks[i].token {
                Token::LParen => {
                    let close = self.partner[i];
                    if self.starts_query(i + 1, close) {
                        self.query(i + 1, close)?;
                        i = close + 1;
                    } else {
                        groups += 1;
                        i += 1; // into the group: its content is more expression
                    }
                }
                Token::RParen => {
                    groups = groups.saturating_sub(1);
                    i += 1;
                }
                // An argument: inside a call's brackets, first or after `,` or `=>`.
                Token::Word
                    if groups > 0
                        && self.is_any(i, &[Kw::TABLE, Kw::MODEL])
                        && (self.punct(i - 1, &Token::LParen)
                            || self.punct(i - 1, &Token::Comma)
                            || self.punct(i - 1, &Token::RArrow)) =>
                {
                    match self.path_at(i + 1, end) {
                        Some(path) => {
                            self.table(&path.parts, Use::Read);
                            i = path.next;
                        }
                        None => i += 1,
                    }
                }
                _ => i += 1,
            }
        }
        Ok(())
    }
}
