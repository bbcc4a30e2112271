//! The dependency reader against fixtures: one `.sql` file per case under `tests/sql/`, its
//! expected answer in a header of comment lines, one test each.
//!
//! ```text
//! -- reads: p.d.a, p.d.b        tables read (a bare `-- reads:` for none)
//! -- writes: p.d.c              tables written (none when absent)
//! -- lenient: true              read by keywords alone (false when absent)
//! -- unknowable: 1              notes of what no reading can see (0 when absent)
//! -- error: 3:7 never closed    refused: line:column and words of the message
//! -- defaults: p.d              project.dataset, `d` alone, or `none` (p.d when absent)
//! ```

use std::path::{Path, PathBuf};

use baton_core::sql::{Defaults, analyze};

#[derive(Default)]
struct Expected {
    reads: Option<Vec<String>>,
    writes: Vec<String>,
    lenient: bool,
    unknowable: usize,
    error: Option<(u64, u64, String)>,
    defaults: Option<Defaults>,
}

fn names(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn expected(path: &Path, text: &str) -> Expected {
    let mut e = Expected::default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("-- ") else {
            break;
        };
        let Some((key, value)) = rest.split_once(':') else {
            break;
        };
        let value = value.trim();
        match key {
            "reads" => e.reads = Some(names(value)),
            "writes" => e.writes = names(value),
            "lenient" => e.lenient = value == "true",
            "unknowable" => e.unknowable = value.parse().expect("unknowable: a count"),
            "about" => {}
            "defaults" => {
                e.defaults = Some(match value {
                    "none" => Defaults::default(),
                    v => match v.split_once('.') {
                        Some((p, d)) => Defaults::new(p, d),
                        None => Defaults {
                            project: None,
                            dataset: Some(v.to_string()),
                        },
                    },
                })
            }
            "error" => {
                let (place, words) = value.split_once(' ').unwrap_or((value, ""));
                let (l, c) = place.split_once(':').expect("error: line:column words");
                e.error = Some((l.parse().unwrap(), c.parse().unwrap(), words.to_string()));
            }
            _ => break,
        }
    }
    assert!(
        e.reads.is_some() || e.error.is_some(),
        "{}: the header says neither `reads:` nor `error:`",
        path.display()
    );
    e
}

#[rstest::rstest]
fn fixture(#[files("tests/sql/**/*.sql")] path: PathBuf) {
    let text = std::fs::read_to_string(&path).unwrap();
    let e = expected(&path, &text);
    let defaults = e
        .defaults
        .clone()
        .unwrap_or_else(|| Defaults::new("p", "d"));
    let result = analyze(&text, &defaults);
    match (&e.error, result) {
        (Some((line, column, words)), Err(err)) => {
            assert_eq!((err.line, err.column), (*line, *column), "{err}");
            assert!(
                err.message.contains(words.as_str()),
                "{err} lacks `{words}`"
            );
        }
        (Some(_), Ok(a)) => panic!("expected an error, read {a:?}"),
        (None, Err(err)) => panic!("expected an answer, got the error {err}"),
        (None, Ok(a)) => {
            let reads: Vec<String> = a.reads.iter().cloned().collect();
            let writes: Vec<String> = a.writes.iter().cloned().collect();
            let mut want_reads = e.reads.clone().unwrap();
            want_reads.sort();
            let mut want_writes = e.writes.clone();
            want_writes.sort();
            assert_eq!(reads, want_reads, "reads");
            assert_eq!(writes, want_writes, "writes");
            assert_eq!(a.lenient, e.lenient, "lenient");
            assert_eq!(
                a.unknowable.len(),
                e.unknowable,
                "unknowable: {:?}",
                a.unknowable
            );
        }
    }
}
