//! Fuzzing what Baton reads from people's catalogs: SQL, `.sql` files with their headers,
//! `baton.toml` and `.load.toml`. Each input (a real file mutated, repeated up to 1 MB, or
//! noise) gets an answer, a reading or errors that say where, without a panic, and within a
//! bound far above its expected time (a hang detector, not a speed target: the figures are in
//! `tests/bench/sql.sh`).
//!
//! `BATON_FUZZ_CASES` is how many inputs each property tries (48 unless told):
//! `BATON_FUZZ_CASES=5000 cargo test --release -p baton-core --test fuzz` runs longer.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use baton_core::catalog::folder::{self, Defaults as FolderDefaults};
use baton_core::sql::{Defaults, analyze};

/// The most an input may be.
const MAX_INPUT: usize = 1 << 20;
/// No input takes this long, in a debug build on a slow machine, unless something hangs.
const HANG: Duration = Duration::from_secs(20);

fn cases() -> u32 {
    std::env::var("BATON_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(48)
}

fn files_under(dir: &Path, ext: &str, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("a fixture folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, ext, found);
        } else if path.to_string_lossy().ends_with(ext) {
            found.push(std::fs::read_to_string(&path).expect("UTF-8"));
        }
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The SQL fixtures and the example catalog's files: real inputs to start from.
fn seeds(ext: &str) -> Vec<String> {
    let mut found = Vec::new();
    if ext == ".sql" {
        files_under(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql"),
            ext,
            &mut found,
        );
    }
    files_under(&repo().join("tests/catalogs"), ext, &mut found);
    assert!(!found.is_empty(), "no {ext} seeds");
    found
}

/// Pieces that mean something to one reader or another.
const FRAGMENTS: &[&str] = &[
    "SELECT",
    "FROM",
    "(",
    ")",
    "`",
    "'",
    "\"",
    "\"\"\"",
    "--",
    "/*",
    "*/",
    "\n",
    ";",
    "d.t",
    "WITH x AS (",
    "BEGIN",
    "END",
    "-- frequency: ",
    "-- write: merge\n",
    "-- key: id\n",
    "-- depends_on: d.x\n",
    "-- condition: weekday in (mon)\n",
    "-- import: db\n",
    "[",
    "]",
    "[frequencies.x]\n",
    "every = ",
    "\"1h\"",
    "cron = \"",
    "columns = [",
    "[csv]\n",
    "=",
    "prefix = \"",
    "\u{0}",
    "é",
    "\u{feff}",
    "\r\n",
    "\\",
    "${",
    "@run_time",
    "|>",
    "0x",
];

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, &'static str),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Byte(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), proptest::sample::select(FRAGMENTS))
            .prop_map(|(at, s)| Mutation::Insert(at, s)),
        (any::<usize>(), 0usize..200).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (any::<usize>(), 0usize..400).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Byte(at, b)),
    ]
}

/// How big the input grows: as it is, repeated a few times, or to 1 MB.
fn growth() -> impl Strategy<Value = usize> {
    prop_oneof![4 => Just(1usize), 2 => 2usize..20, 1 => Just(usize::MAX)]
}

/// `seed` mutated, then repeated `times` (at most to 1 MB), as text.
fn mutate(seed: &str, mutations: &[Mutation], times: usize) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for m in mutations {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match *m {
            Mutation::Insert(i, s) => {
                let i = at(i, bytes.len());
                bytes.splice(i..i, s.bytes());
            }
            Mutation::Delete(i, n) => {
                let i = at(i, bytes.len());
                let end = (i + n).min(bytes.len());
                bytes.drain(i..end);
            }
            Mutation::Duplicate(i, n) => {
                let i = at(i, bytes.len());
                let end = (i + n).min(bytes.len());
                let copy = bytes[i..end].to_vec();
                bytes.splice(end..end, copy);
            }
            Mutation::Byte(i, b) => {
                if !bytes.is_empty() {
                    let i = i % bytes.len();
                    bytes[i] = b;
                }
            }
        }
    }
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if times > 1 && !text.is_empty() {
        let copies = times.min(MAX_INPUT / (text.len() + 2)).max(1);
        text = vec![text; copies].join(";\n");
    }
    text.truncate(floor_boundary(&text, MAX_INPUT));
    text
}

fn floor_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Runs `read` on `input` and checks it answered in time.
fn timed<T>(what: &str, input: &str, read: impl FnOnce(&str) -> T) -> T {
    let started = Instant::now();
    let answer = read(input);
    let took = started.elapsed();
    assert!(
        took < HANG,
        "{what} took {took:?} over {} bytes",
        input.len()
    );
    answer
}

fn sql_seeds() -> &'static [String] {
    static SEEDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| seeds(".sql"))
}

fn toml_seeds(ext: &str) -> Vec<String> {
    let mut seeds = seeds(ext);
    if ext == ".load.toml" {
        seeds.push(
            "format = \"ndjson\"\nprefix = \"in/\"\n[batch]\nfiles = 3\nbytes = \"1 MiB\"\nage = \"5m\"\n"
                .into(),
        );
    } else {
        seeds.push(
            "dataset = \"a\"\n[frequencies.w]\ncron = \"30 6 * * mon-fri\"\ntime_zone = \"Europe/Paris\"\n"
                .into(),
        );
    }
    seeds
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn sql_is_read_or_refused_where_it_is_wrong(
        seed in any::<proptest::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 0..12),
        times in growth(),
    ) {
        let seeds = sql_seeds();
        let text = mutate(seed.get::<String>(seeds), &mutations, times);
        match timed("analyze", &text, |t| analyze(t, &Defaults::new("p", "d"))) {
            Ok(_) => {}
            Err(e) => {
                let lines = text.split('\n').count() as u64;
                prop_assert!(e.line >= 1 && e.line <= lines && e.column >= 1, "{e} of {lines} lines");
                prop_assert!(!e.message.is_empty());
            }
        }
    }

    #[test]
    fn a_table_file_is_read_or_its_problems_named(
        seed in any::<proptest::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 0..12),
        times in growth(),
    ) {
        let seeds = sql_seeds();
        let text = mutate(seed.get::<String>(seeds), &mutations, times);
        let defaults = FolderDefaults {
            dataset: Some("d".into()),
            frequency: Some("hourly".into()),
            ..FolderDefaults::default()
        };
        if let Err(problems) =
            timed("a table file", &text, |t| folder::parse_table_file("d/t.sql", "t", t.to_string(), &defaults))
        {
            prop_assert!(!problems.is_empty());
            for p in problems {
                prop_assert!(p.at.starts_with("d/t.sql"), "{}", p.at);
                prop_assert!(!p.message.is_empty());
            }
        }
    }

    #[test]
    fn a_manifest_is_read_or_its_problems_named(
        seed in any::<proptest::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 0..12),
        times in growth(),
    ) {
        let seeds = toml_seeds("baton.toml");
        let text = mutate(seed.get::<String>(&seeds), &mutations, times);
        if let Err(problems) = timed("baton.toml", &text, |t| folder::parse_manifest("baton.toml", t)) {
            prop_assert!(!problems.is_empty());
            for p in problems {
                prop_assert!(!p.message.is_empty());
            }
        }
    }

    #[test]
    fn a_load_file_is_read_or_its_problems_named(
        seed in any::<proptest::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 0..12),
        times in growth(),
    ) {
        let seeds = toml_seeds(".load.toml");
        let text = mutate(seed.get::<String>(&seeds), &mutations, times);
        let result = timed("a load file", &text, |t| {
            folder::parse_load_file("d/l.load.toml", "l", t, &FolderDefaults::default())
        });
        if let Err(problems) = result {
            prop_assert!(!problems.is_empty());
            for p in problems {
                prop_assert!(p.at.starts_with("d/l.load.toml"), "{}", p.at);
                prop_assert!(!p.message.is_empty());
            }
        }
    }
}
