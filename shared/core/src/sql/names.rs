//! Table names: reading a dotted path from tokens, and writing it normalised.
//!
//! BigQuery accepts one name in many spellings: `` `p.d.t` ``, `` `p`.`d`.`t` ``,
//! `` `p`.d.t ``, unquoted `p.d.t` and `d.t`, project ids with dashes unquoted
//! (`my-project.d.t`), wildcard tables (`d.events_*`), and INFORMATION_SCHEMA views
//! (`region-us.INFORMATION_SCHEMA.JOBS`, `d.INFORMATION_SCHEMA.TABLES`). All become the same
//! dotted text without backticks: project ids lowercase (they are lowercase in BigQuery),
//! dataset and table names as written (they are case-sensitive), INFORMATION_SCHEMA and its
//! view names uppercase (they are case-insensitive).

use super::Defaults;
use super::lexer::{Tok, Token, name, text};

/// The parts of a path as written, and the index of the token after it.
pub(crate) struct Path {
    pub parts: Vec<String>,
    pub next: usize,
}

/// Reads the path starting at `pos` (not past `end`), or `None` when no name starts there.
/// `reserved` says which unquoted words cannot begin a name.
pub(crate) fn read_path(
    sql: &str,
    toks: &[Tok],
    pos: usize,
    end: usize,
    reserved: impl Fn(&Tok) -> bool,
) -> Option<Path> {
    let mut parts: Vec<String> = Vec::new();
    let mut i = pos;
    loop {
        let tok = toks.get(i).filter(|_| i < end)?;
        if !matches!(tok.token, Token::Word | Token::Quoted) {
            return None;
        }
        let word = name(sql, tok);
        let quoted = tok.token == Token::Quoted;
        if word.starts_with('@') || (parts.is_empty() && !quoted && reserved(tok)) {
            return None;
        }
        if quoted {
            parts.extend(word.split('.').map(str::to_string));
            i += 1;
        } else {
            let mut joined = word.to_string();
            i += 1;
            // `my-project`, `region-us`, `project-123`: dashes join words they touch.
            let mut dot_eaten = false;
            while i + 1 < end
                && toks[i].token == Token::Minus
                && toks[i - 1].touches(&toks[i])
                && toks[i].touches(&toks[i + 1])
            {
                let after = text(sql, &toks[i + 1]);
                match toks[i + 1].token {
                    Token::Word => {
                        joined.push('-');
                        joined.push_str(after);
                    }
                    Token::Number => match after.strip_suffix('.') {
                        // The lexer reads `123.` of `project-123.ds.t` as one number.
                        Some(digits) => {
                            joined.push('-');
                            joined.push_str(digits);
                            dot_eaten = true;
                        }
                        None => {
                            joined.push('-');
                            joined.push_str(after);
                        }
                    },
                    _ => break,
                }
                i += 2;
                if dot_eaten {
                    break;
                }
            }
            parts.push(joined);
            if dot_eaten {
                continue;
            }
        }
        // `foo.bar.25ab`: BigQuery lets a path's later parts begin with a digit, and the
        // lexer reads such a dot and digits as a number (`.25`), with the rest of the part
        // as a word touching it (`ab`).
        while i < end
            && toks[i - 1].touches(&toks[i])
            && toks[i].token == Token::Number
            && let Some(digits) = text(sql, &toks[i]).strip_prefix('.')
            && !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_alphanumeric())
        {
            let mut part = digits.to_string();
            i += 1;
            if i < end && toks[i - 1].touches(&toks[i]) && toks[i].token == Token::Word {
                part.push_str(text(sql, &toks[i]));
                i += 1;
            }
            parts.push(part);
        }
        // `events_*`: a star touching the last part makes a wildcard table.
        if i < end && toks[i].token == Token::Mul && toks[i - 1].touches(&toks[i]) {
            if let Some(last) = parts.last_mut() {
                last.push('*');
            }
            i += 1;
            return Some(Path { parts, next: i });
        }
        if i + 1 < end
            && toks[i].token == Token::Period
            && matches!(toks[i + 1].token, Token::Word | Token::Quoted)
        {
            i += 1;
            continue;
        }
        return Some(Path { parts, next: i });
    }
}

/// The path as one dotted name, qualified with the defaults it lacks.
pub(crate) fn normalize(parts: &[String], defaults: &Defaults) -> String {
    let schema = parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("INFORMATION_SCHEMA"));
    let (prefix, rest): (&[String], Vec<String>) = match schema {
        Some(k) => (
            &parts[..k],
            parts[k..].iter().map(|p| p.to_ascii_uppercase()).collect(),
        ),
        None => match parts.len() {
            0 => (&[], Vec::new()),
            n => (&parts[..n - 1], vec![parts[n - 1].clone()]),
        },
    };
    // The prefix holds project and dataset (or region), right-aligned.
    let mut qualified: Vec<String> = Vec::with_capacity(4);
    match prefix {
        [] => {
            if let Some(p) = &defaults.project {
                qualified.push(p.clone());
            }
            if let Some(d) = &defaults.dataset {
                qualified.push(d.clone());
            }
            if defaults.dataset.is_none() {
                // Without a default dataset a project alone cannot qualify a bare name.
                qualified.clear();
            }
        }
        [dataset] => {
            if let Some(p) = &defaults.project {
                qualified.push(p.clone());
            }
            qualified.push(dataset.clone());
        }
        [project, more @ ..] => {
            qualified.push(project.to_ascii_lowercase());
            qualified.extend(more.iter().cloned());
        }
    }
    qualified.extend(rest);
    qualified.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::lexer::Tokens;

    fn d(project: Option<&str>, dataset: Option<&str>) -> Defaults {
        Defaults {
            project: project.map(str::to_string),
            dataset: dataset.map(str::to_string),
        }
    }

    fn read(text: &str) -> (Vec<String>, usize) {
        let t = Tokens::new(text).unwrap();
        let p = read_path(text, &t.toks, 0, t.toks.len(), |_| false).unwrap();
        (p.parts, p.next)
    }

    #[test]
    fn every_spelling_reads_to_the_same_parts() {
        for text in [
            "`p.d.t`",
            "`p`.`d`.`t`",
            "`p`.d.t",
            "p.d.t",
            "`p.d`.t",
            "p . d . t",
        ] {
            assert_eq!(read(text).0, ["p", "d", "t"], "{text}");
        }
    }

    #[test]
    fn dashes_and_stars_join_what_they_touch() {
        assert_eq!(read("my-project.d.t").0, ["my-project", "d", "t"]);
        assert_eq!(read("project-123.ds.t").0, ["project-123", "ds", "t"]);
        assert_eq!(
            read("region-us.INFORMATION_SCHEMA.JOBS").0,
            ["region-us", "INFORMATION_SCHEMA", "JOBS"]
        );
        assert_eq!(read("d.events_* x").0, ["d", "events_*"]);
        assert_eq!(read("d.events_* x").1, 4, "the alias comes after the star");
        assert_eq!(
            read("d.t - 1").0,
            ["d", "t"],
            "a spaced minus is arithmetic"
        );
    }

    #[test]
    fn names_are_qualified_with_the_defaults_they_lack() {
        let full = d(Some("p"), Some("d"));
        let s = |parts: &[&str], defaults: &Defaults| {
            normalize(
                &parts.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                defaults,
            )
        };
        assert_eq!(s(&["t"], &full), "p.d.t");
        assert_eq!(s(&["x", "t"], &full), "p.x.t");
        assert_eq!(s(&["My-Proj", "x", "T"], &full), "my-proj.x.T");
        assert_eq!(s(&["t"], &d(None, None)), "t");
        assert_eq!(s(&["x", "t"], &d(None, None)), "x.t");
        assert_eq!(s(&["t"], &d(None, Some("d"))), "d.t");
        assert_eq!(
            s(&["t"], &d(Some("p"), None)),
            "t",
            "a project alone cannot place a bare name"
        );
        assert_eq!(
            s(&["region-us", "information_schema", "jobs"], &full),
            "p.region-us.INFORMATION_SCHEMA.JOBS"
        );
        assert_eq!(
            s(&["x", "INFORMATION_SCHEMA", "TABLES"], &full),
            "p.x.INFORMATION_SCHEMA.TABLES"
        );
        assert_eq!(
            s(&["INFORMATION_SCHEMA", "TABLES"], &full),
            "p.d.INFORMATION_SCHEMA.TABLES"
        );
        assert_eq!(s(&["d", "events_*"], &full), "p.d.events_*");
    }
}
