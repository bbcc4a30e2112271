//! Applying a catalog change: what to write, what to delete, and why not when it is wrong.
//!
//! Pure: the stored catalog and the request in, the plan (or every problem) out. The API
//! performs the plan.
//!
//! Each table's SQL is read (in parallel, and only when it changed) for the tables it reads and
//! writes. Dependencies are then resolved for the whole resulting catalog, since a table added
//! now can be the parent of one stored long ago: a name read is produced by the catalog table
//! of that name and by any catalog table whose SQL writes it; a wildcard (`d.events_*`) by every
//! table its prefix matches; what no catalog table produces is an external source. A table's
//! reads of itself (an incremental append that looks at what it holds) are no dependency.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{CatalogSpec, Frequency, Problem, Table, TableId};
use crate::dag;
use crate::sql::{self, Analysis, Defaults, SqlError};

pub const TABLE_SCHEMA_VERSION: u32 = 1;

/// The version of the SQL reader whose answers a table document holds: a stored answer is
/// reused only when it came from the same version.
pub const ANALYZER_VERSION: u32 = 2;

/// `tables/{dataset.table}`: a table's definition and what Baton inferred from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TableDoc {
    pub schema_version: u32,
    pub id: TableId,
    pub definition: Table,
    /// Every table and model its SQL reads, `project.dataset.table`.
    pub reads: Vec<String>,
    /// What its SQL creates, changes or drops besides its own table (a script's side tables).
    #[serde(default)]
    pub writes: Vec<String>,
    /// Its SQL was partly read by keywords alone.
    #[serde(default)]
    pub lenient: bool,
    /// What its SQL does that no reading can see (`EXECUTE IMMEDIATE`, `CALL`).
    #[serde(default)]
    pub unknowable: Vec<String>,
    /// The named query parameters its SQL uses (`run_time`, `window_start`, `window_end`).
    #[serde(default)]
    pub parameters: Vec<String>,
    #[serde(default)]
    pub analyzer: u32,
    /// The catalog tables it depends on: those producing what it reads, and its explicit
    /// `depends_on`.
    pub parents: Vec<TableId>,
    /// What it reads that no catalog table produces: tables loaded by other means.
    #[serde(default)]
    pub external: Vec<String>,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub updated_at: Timestamp,
}

impl TableDoc {
    /// The document of `definition` with the parents given and its SQL not read: for tests
    /// and benchmarks that plan runs without analysing SQL.
    pub fn unanalysed(
        id: TableId,
        definition: Table,
        parents: Vec<TableId>,
        updated_at: Timestamp,
    ) -> Self {
        Self {
            schema_version: TABLE_SCHEMA_VERSION,
            id,
            definition,
            reads: Vec::new(),
            writes: Vec::new(),
            lenient: false,
            unknowable: Vec::new(),
            parameters: Vec::new(),
            analyzer: 0,
            parents,
            external: Vec::new(),
            updated_at,
        }
    }

    /// Whether two documents say the same, whenever they were written.
    fn same_as(&self, other: &TableDoc) -> bool {
        self.definition == other.definition
            && self.reads == other.reads
            && self.writes == other.writes
            && self.lenient == other.lenient
            && self.unknowable == other.unknowable
            && self.parameters == other.parameters
            && self.analyzer == other.analyzer
            && self.parents == other.parents
            && self.external == other.external
    }

    /// The stored answer for this definition, if the same reader gave it.
    fn analysis_for(&self, table: &Table) -> Option<Analysis> {
        (self.analyzer == ANALYZER_VERSION
            && self.definition.sql == table.sql
            && self.definition.dataset == table.dataset
            && self.definition.kind == table.kind)
            .then(|| Analysis {
                reads: self.reads.iter().cloned().collect(),
                writes: self.writes.iter().cloned().collect(),
                lenient: self.lenient,
                unknowable: self.unknowable.clone(),
                parameters: self.parameters.iter().cloned().collect(),
            })
    }
}

/// What a change did to one table or frequency.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Updated,
    Unchanged,
    Deleted,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Change {
    /// `table` or `frequency`.
    pub kind: String,
    pub id: String,
    pub action: Action,
}

/// The writes and deletes that make the stored catalog what the request asks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApplyPlan {
    pub write_frequencies: Vec<Frequency>,
    pub write_tables: Vec<TableDoc>,
    pub delete_frequencies: Vec<String>,
    pub delete_tables: Vec<TableId>,
    pub changes: Vec<Change>,
    /// Every table of the resulting catalog with its parents.
    pub dependencies: BTreeMap<TableId, Vec<TableId>>,
    /// What is accepted but deserves a look: SQL read leniently, SQL whose tables cannot be
    /// known.
    pub warnings: Vec<Problem>,
}

/// Reads every table's SQL, on all cores for large catalogs. Answers come back in order.
pub fn analyze_all(tables: &[&Table], project: &str) -> Vec<Result<Analysis, SqlError>> {
    // An import's SQL runs on its source database and reads nothing in BigQuery.
    let analyze = |t: &&Table| match t.kind {
        super::TableKind::Import | super::TableKind::Load => Ok(Analysis::default()),
        super::TableKind::Query => sql::analyze(&t.sql, &Defaults::new(project, &t.dataset)),
    };
    crate::parallel::map(tables, 64, analyze)
}

/// The SQL reader's answers kept from one reading of a catalog to the next (`baton check`
/// keeps them between runs), each under a digest of all it depends on: the reader's version,
/// the project, the table's kind, dataset and SQL. A changed input is read again; a file with
/// an error is read again each time (only answers are kept).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReadCache {
    answers: HashMap<String, Analysis>,
    /// How many answers the last reading took from it.
    #[serde(skip)]
    hits: usize,
}

impl ReadCache {
    fn key(table: &Table, project: &str) -> String {
        let mut digest = Sha256::new();
        digest.update(ANALYZER_VERSION.to_le_bytes());
        let kind = format!("{:?}", table.kind);
        for part in [kind.as_str(), project, &table.dataset, &table.sql] {
            digest.update((part.len() as u64).to_le_bytes());
            digest.update(part.as_bytes());
        }
        hex::encode(digest.finalize())
    }

    /// How many answers it holds.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// How many answers the last reading through it took from it rather than reading SQL.
    pub fn hits(&self) -> usize {
        self.hits
    }

    /// `analyze_all`, reading only the tables it has no answer for. Afterwards it holds the
    /// answers of these tables alone, so that it never outgrows the catalog.
    pub fn analyze_all(
        &mut self,
        tables: &[&Table],
        project: &str,
    ) -> Vec<Result<Analysis, SqlError>> {
        let keys = crate::parallel::map(tables, 256, |t| Self::key(t, project));
        let mut known: Vec<Option<Analysis>> =
            keys.iter().map(|k| self.answers.remove(k)).collect();
        self.hits = known.iter().filter(|a| a.is_some()).count();
        let unknown: Vec<&Table> = tables
            .iter()
            .zip(&known)
            .filter(|(_, a)| a.is_none())
            .map(|(t, _)| *t)
            .collect();
        let mut read = analyze_all(&unknown, project).into_iter();
        let answers: Vec<Result<Analysis, SqlError>> = known
            .iter_mut()
            .map(|a| match a.take() {
                Some(analysis) => Ok(analysis),
                None => read.next().expect("an answer for every table read"),
            })
            .collect();
        self.answers = keys
            .into_iter()
            .zip(&answers)
            .filter_map(|(k, a)| Some((k, a.as_ref().ok()?.clone())))
            .collect();
        answers
    }
}

/// A table of the resulting catalog, with what its SQL reads and writes.
struct Entry {
    table: Table,
    analysis: Analysis,
}

/// Plans applying `request` over the stored catalog. With `prune`, stored tables and
/// frequencies the request does not name are deleted; without, they are kept.
pub fn plan_apply(
    stored_frequencies: &[Frequency],
    stored_tables: &[TableDoc],
    request: &CatalogSpec,
    prune: bool,
    project: &str,
    now: Timestamp,
) -> Result<ApplyPlan, Vec<Problem>> {
    plan_apply_cached(
        stored_frequencies,
        stored_tables,
        request.clone(),
        prune,
        project,
        now,
        &BTreeSet::new(),
        None,
    )
}

/// `plan_apply`, taking the SQL reader's answers from `cache` where it has them, and leaving
/// in it the answers of this catalog (without one, every table's SQL is read and nothing is
/// kept). `unread` are tables that exist but could not be given (their files have problems
/// of their own): `depends_on` may name them. The request's tables become the plan's
/// documents without a copy.
#[allow(clippy::too_many_arguments)]
pub fn plan_apply_cached(
    stored_frequencies: &[Frequency],
    stored_tables: &[TableDoc],
    request: CatalogSpec,
    prune: bool,
    project: &str,
    now: Timestamp,
    unread: &BTreeSet<TableId>,
    cache: Option<&mut ReadCache>,
) -> Result<ApplyPlan, Vec<Problem>> {
    let requested_frequencies: BTreeSet<String> =
        request.frequencies.iter().map(|f| f.name.clone()).collect();
    let kept_frequencies: BTreeSet<String> = if prune {
        BTreeSet::new()
    } else {
        stored_frequencies.iter().map(|f| f.name.clone()).collect()
    };
    // Every problem at once: the tables whose names are valid are read on past the others'
    // problems.
    let (mut problems, ids) = request.validate_with_ids(&kept_frequencies);
    let stored_by_id: BTreeMap<&TableId, &TableDoc> =
        stored_tables.iter().map(|d| (&d.id, d)).collect();

    // Every table of the resulting catalog, its SQL read once.
    let mut resulting: BTreeMap<TableId, Entry> = BTreeMap::new();
    if !prune {
        for doc in stored_tables {
            let analysis = doc.analysis_for(&doc.definition);
            let table = doc.definition.clone();
            resulting.insert(
                doc.id.clone(),
                Entry {
                    table,
                    analysis: analysis.unwrap_or_default(),
                },
            );
        }
    }
    // Each requested table's answer: stored with the same definition, or to be read now.
    enum Answer {
        Invalid,
        Stored(TableId, Analysis),
        Read(TableId),
    }
    let mut to_read: Vec<&Table> = Vec::new();
    let mut sources: Vec<Answer> = Vec::with_capacity(request.tables.len());
    let mut requested: HashSet<&TableId> = HashSet::with_capacity(ids.len());
    for (table, id) in request.tables.iter().zip(&ids) {
        let Some(id) = id else {
            sources.push(Answer::Invalid);
            continue;
        };
        requested.insert(id);
        if table.oversized().is_some() {
            sources.push(Answer::Invalid);
            continue;
        }
        sources.push(
            match stored_by_id.get(id).and_then(|d| d.analysis_for(table)) {
                Some(analysis) => Answer::Stored(id.clone(), analysis),
                None => {
                    to_read.push(table);
                    Answer::Read(id.clone())
                }
            },
        );
    }
    // Stored tables read by an older reader are read again, so that their answers stay true.
    let stale: Vec<(TableId, Table)> = resulting
        .iter()
        .filter(|(id, _)| {
            stored_by_id
                .get(id)
                .is_some_and(|d| d.analyzer != ANALYZER_VERSION)
        })
        .filter(|(id, _)| !requested.contains(*id))
        .map(|(id, e)| (id.clone(), e.table.clone()))
        .collect();
    to_read.extend(stale.iter().map(|(_, table)| table));
    let answers = match cache {
        Some(cache) => cache.analyze_all(&to_read, project),
        None => analyze_all(&to_read, project),
    };
    let mut settle = |id: TableId, table: Table, answer: Result<Analysis, SqlError>| match answer {
        Ok(analysis) => {
            resulting.insert(id, Entry { table, analysis });
        }
        Err(e) => problems.push(Problem {
            at: format!("{}:{}:{}", table.origin(), e.line, e.column),
            message: e.message,
        }),
    };
    let mut answers = answers.into_iter();
    for (table, source) in request.tables.into_iter().zip(sources) {
        match source {
            Answer::Invalid => {}
            Answer::Stored(id, analysis) => settle(id, table, Ok(analysis)),
            Answer::Read(id) => {
                settle(id, table, answers.next().expect("an answer per table read"));
            }
        }
    }
    for ((id, table), answer) in stale.into_iter().zip(answers) {
        settle(id, table, answer);
    }

    // Tables kept from the store may use a frequency only if it stays.
    let frequencies_after: BTreeSet<&String> = requested_frequencies
        .iter()
        .chain(&kept_frequencies)
        .collect();
    // (A requested table's unknown frequency is one of `validate`'s problems already.)
    for (id, entry) in &resulting {
        if let Some(f) = &entry.table.frequency
            && !frequencies_after.contains(f)
            && !requested.contains(id)
        {
            problems.push(Problem {
                at: entry.table.origin(),
                message: format!("table {id} uses frequency `{f}`, which this change deletes"),
            });
        }
    }

    let resolved = resolve(&resulting, project);
    for (id, entry) in &resulting {
        for explicit in &entry.table.depends_on {
            if !resulting.contains_key(explicit) && !unread.contains(explicit) {
                problems.push(Problem {
                    at: entry.table.origin(),
                    message: format!(
                        "depends_on names {explicit}, which is not in the catalog ({id})"
                    ),
                });
            }
        }
    }
    let dependencies: BTreeMap<TableId, Vec<TableId>> = resulting
        .keys()
        .zip(&resolved)
        .map(|(id, r)| (id.clone(), r.parents.clone()))
        .collect();
    if let Err(cycle) = dag::check_acyclic(&dependencies) {
        let first = &cycle.path[0];
        problems.push(Problem {
            at: resulting[first].table.origin(),
            message: cycle.to_string(),
        });
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let mut plan = ApplyPlan {
        dependencies,
        write_tables: Vec::with_capacity(resulting.len()),
        changes: Vec::with_capacity(resulting.len() + request.frequencies.len()),
        ..ApplyPlan::default()
    };
    for ((id, entry), Resolved { parents, external }) in resulting.into_iter().zip(resolved) {
        let analysis = entry.analysis;
        if analysis.lenient {
            plan.warnings.push(Problem {
                at: entry.table.origin(),
                message: "part of this SQL has a shape Baton could not place and was read by \
                          keywords alone: check its dependencies"
                    .into(),
            });
        }
        for note in &analysis.unknowable {
            plan.warnings.push(Problem {
                at: entry.table.origin(),
                message: format!("{note}: add what it reads with `depends_on`"),
            });
        }
        let own = format!("{project}.{id}");
        let doc = TableDoc {
            schema_version: TABLE_SCHEMA_VERSION,
            id: id.clone(),
            definition: entry.table,
            reads: analysis.reads.into_iter().collect(),
            writes: analysis.writes.into_iter().filter(|w| *w != own).collect(),
            lenient: analysis.lenient,
            unknowable: analysis.unknowable,
            parameters: analysis.parameters.into_iter().collect(),
            analyzer: ANALYZER_VERSION,
            parents,
            external,
            updated_at: now,
        };
        let action = match stored_by_id.get(&id) {
            None => Action::Created,
            Some(old) if old.same_as(&doc) => Action::Unchanged,
            Some(_) => Action::Updated,
        };
        if action != Action::Unchanged {
            plan.write_tables.push(doc);
        }
        plan.changes.push(Change {
            kind: "table".into(),
            id: id.to_string(),
            action,
        });
    }
    for doc in stored_tables {
        if !plan.dependencies.contains_key(&doc.id) {
            plan.delete_tables.push(doc.id.clone());
            plan.changes.push(Change {
                kind: "table".into(),
                id: doc.id.to_string(),
                action: Action::Deleted,
            });
        }
    }

    let stored_frequency: BTreeMap<&String, &Frequency> =
        stored_frequencies.iter().map(|f| (&f.name, f)).collect();
    for frequency in &request.frequencies {
        let action = match stored_frequency.get(&frequency.name) {
            None => Action::Created,
            Some(old) if *old == frequency => Action::Unchanged,
            Some(_) => Action::Updated,
        };
        if action != Action::Unchanged {
            plan.write_frequencies.push(frequency.clone());
        }
        plan.changes.push(Change {
            kind: "frequency".into(),
            id: frequency.name.clone(),
            action,
        });
    }
    if prune {
        for frequency in stored_frequencies {
            if !requested_frequencies.contains(&frequency.name) {
                plan.delete_frequencies.push(frequency.name.clone());
                plan.changes.push(Change {
                    kind: "frequency".into(),
                    id: frequency.name.clone(),
                    action: Action::Deleted,
                });
            }
        }
    }
    plan.changes
        .sort_by(|a, b| (&a.kind, &a.id).cmp(&(&b.kind, &b.id)));
    Ok(plan)
}

#[derive(Clone, Debug, Default)]
struct Resolved {
    parents: Vec<TableId>,
    external: Vec<String>,
}

/// Each table's parents and external sources, from what the catalog's tables read and write,
/// in the catalog's order.
fn resolve(catalog: &BTreeMap<TableId, Entry>, project: &str) -> Vec<Resolved> {
    // Who produces each name: the table of that name, and every table whose SQL writes it;
    // sorted by name, so that a name's producers, and a prefix's, lie side by side.
    let own: Vec<String> = catalog.keys().map(|id| format!("{project}.{id}")).collect();
    let mut producers: Vec<(&str, &TableId)> = Vec::with_capacity(own.len());
    for ((id, entry), own) in catalog.iter().zip(&own) {
        producers.push((own, id));
        producers.extend(entry.analysis.writes.iter().map(|w| (w.as_str(), id)));
    }
    producers.sort_unstable();
    producers.dedup();
    let mut by_name: HashMap<&str, std::ops::Range<usize>> = HashMap::with_capacity(own.len());
    for (at, (name, _)) in producers.iter().enumerate() {
        by_name.entry(name).or_insert(at..at).end = at + 1;
    }
    let named = |name: &str| by_name.get(name).map_or(&[][..], |r| &producers[r.clone()]);
    let prefixed = |prefix: &str| {
        let from = producers.partition_point(|(n, _)| *n < prefix);
        let to = producers.partition_point(|(n, _)| *n < prefix || n.starts_with(prefix));
        &producers[from..to]
    };
    // Each table's parents on all cores for large catalogs.
    let entries: Vec<(&TableId, &Entry)> = catalog.iter().collect();
    crate::parallel::map(&entries, 256, |&(id, entry)| {
        let mut parents: Vec<&TableId> = entry
            .table
            .depends_on
            .iter()
            .filter(|p| catalog.contains_key(*p))
            .collect();
        let mut external = Vec::new();
        for read in &entry.analysis.reads {
            let exact = named(read);
            let found = match read.strip_suffix('*') {
                Some(prefix) => prefixed(prefix),
                None => exact,
            };
            let before = parents.len();
            parents.extend(found.iter().map(|(_, p)| *p).filter(|p| *p != id));
            // A table's reads of itself are neither parents nor external.
            if parents.len() == before && !exact.iter().any(|(_, p)| *p == id) {
                external.push(read.clone());
            }
        }
        parents.sort_unstable();
        parents.dedup();
        parents.retain(|p| *p != id);
        Resolved {
            parents: parents.into_iter().cloned().collect(),
            external,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-22T10:00:00Z".parse().unwrap()
    }

    fn table(id: &str, sql: &str) -> Table {
        let id: TableId = id.parse().unwrap();
        Table {
            frequency: Some("daily".into()),
            source: Some(format!("{}/{}.sql", id.dataset(), id.table())),
            ..Table::query(&id, sql)
        }
    }

    fn daily() -> Frequency {
        Frequency::every("daily", 86_400)
    }

    fn spec(tables: Vec<Table>) -> CatalogSpec {
        CatalogSpec {
            frequencies: vec![daily()],
            tables,
        }
    }

    fn id(s: &str) -> TableId {
        s.parse().unwrap()
    }

    #[test]
    fn dependencies_come_from_the_sql_in_every_form_of_name() {
        let request = spec(vec![
            table("shop.orders", "SELECT 1 AS id"),
            table("shop.customers", "SELECT 1 AS id"),
            table(
                "analytics.totals",
                "SELECT * FROM shop.orders JOIN `acme.shop.customers` USING (id) JOIN elsewhere.x USING (id)",
            ),
            table("analytics.top", "SELECT * FROM totals"),
        ]);
        let plan = plan_apply(&[], &[], &request, false, "acme", now()).unwrap();
        assert_eq!(
            plan.dependencies[&id("analytics.totals")],
            vec![id("shop.customers"), id("shop.orders")]
        );
        assert_eq!(
            plan.dependencies[&id("analytics.top")],
            vec![id("analytics.totals")]
        );
        let totals = plan
            .write_tables
            .iter()
            .find(|d| d.id == id("analytics.totals"))
            .unwrap();
        assert_eq!(
            totals.reads,
            [
                "acme.elsewhere.x",
                "acme.shop.customers",
                "acme.shop.orders"
            ],
            "tables outside the catalog stay as reads, not parents"
        );
        assert!(plan.changes.iter().all(|c| c.action == Action::Created));
    }

    #[test]
    fn kept_answers_are_used_only_for_the_same_sql_dataset_and_project() {
        let mut cache = ReadCache::default();
        let request = spec(vec![
            table("d.a", "SELECT 1 AS x"),
            table("d.b", "SELECT * FROM d.a"),
        ]);
        let fresh = plan_apply(&[], &[], &request, true, "p", now()).unwrap();
        let plan = |request: &CatalogSpec, project: &str, cache: &mut ReadCache| {
            plan_apply_cached(
                &[],
                &[],
                request.clone(),
                true,
                project,
                now(),
                &BTreeSet::new(),
                Some(cache),
            )
        };
        let first = plan(&request, "p", &mut cache).unwrap();
        assert_eq!((cache.hits(), cache.len()), (0, 2));
        let again = plan(&request, "p", &mut cache).unwrap();
        assert_eq!(cache.hits(), 2);
        assert_eq!(again.dependencies, fresh.dependencies);
        assert_eq!(first.dependencies, fresh.dependencies);
        // Another project: read again.
        plan(&request, "q", &mut cache).unwrap();
        assert_eq!(cache.hits(), 0);
        plan(&request, "p", &mut cache).unwrap();
        // d.b's SQL changed: it alone is read, and its new parent is seen; a table gone is
        // no longer kept.
        let changed = spec(vec![
            table("d.a", "SELECT 1 AS x"),
            table("d.b", "SELECT 2 AS y"),
        ]);
        let plan_changed = plan(&changed, "p", &mut cache).unwrap();
        assert_eq!(cache.hits(), 1);
        assert!(plan_changed.dependencies[&id("d.b")].is_empty());
        plan(&spec(vec![table("d.a", "SELECT 1 AS x")]), "p", &mut cache).unwrap();
        assert_eq!((cache.hits(), cache.len()), (1, 1));
        // Another dataset, same SQL: read again, its own names qualified by it.
        let moved = spec(vec![table("e.a", "SELECT 1 AS x")]);
        plan(&moved, "p", &mut cache).unwrap();
        assert_eq!(cache.hits(), 0);
        // An error is not kept: read again each time, and still refused.
        let broken = spec(vec![table("d.a", "SELECT (1")]);
        assert!(plan(&broken, "p", &mut cache).is_err());
        assert!(plan(&broken, "p", &mut cache).is_err());
        assert_eq!((cache.hits(), cache.len()), (0, 0));
    }

    #[test]
    fn a_second_apply_of_the_same_catalog_changes_nothing() {
        let request = spec(vec![
            table("d.a", "SELECT 1"),
            table("d.b", "SELECT * FROM d.a"),
        ]);
        let first = plan_apply(&[], &[], &request, false, "p", now()).unwrap();
        let later: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let second = plan_apply(
            &first.write_frequencies,
            &first.write_tables,
            &request,
            false,
            "p",
            later,
        )
        .unwrap();
        assert!(second.write_tables.is_empty() && second.write_frequencies.is_empty());
        assert!(second.changes.iter().all(|c| c.action == Action::Unchanged));
    }

    #[test]
    fn a_new_table_becomes_the_parent_of_a_stored_one_that_reads_it() {
        let first = plan_apply(
            &[],
            &[],
            &spec(vec![table("d.reader", "SELECT * FROM d.source")]),
            false,
            "p",
            now(),
        )
        .unwrap();
        assert!(first.dependencies[&id("d.reader")].is_empty());
        let second = plan_apply(
            &first.write_frequencies,
            &first.write_tables,
            &spec(vec![table("d.source", "SELECT 1")]),
            false,
            "p",
            now(),
        )
        .unwrap();
        assert_eq!(second.dependencies[&id("d.reader")], vec![id("d.source")]);
        let reader = second.changes.iter().find(|c| c.id == "d.reader").unwrap();
        assert_eq!(reader.action, Action::Updated);
    }

    #[test]
    fn a_cycle_is_refused_with_its_path() {
        let request = spec(vec![
            table("d.a", "SELECT * FROM d.c"),
            table("d.b", "SELECT * FROM d.a"),
            table("d.c", "SELECT * FROM d.b"),
        ]);
        let problems = plan_apply(&[], &[], &request, false, "p", now()).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].at, "d/a.sql");
        // In the direction data flows: d.b reads d.a, d.c reads d.b, d.a reads d.c.
        assert_eq!(
            problems[0].message,
            "dependency cycle: d.a → d.b → d.c → d.a"
        );
    }

    #[test]
    fn bad_sql_is_reported_at_its_file_line_and_column() {
        let request = spec(vec![table("d.a", "SELECT a\nFROM t\nWHERE (a = 1")]);
        let problems = plan_apply(&[], &[], &request, false, "p", now()).unwrap_err();
        assert_eq!(problems[0].at, "d/a.sql:3:7", "{problems:?}");
        assert!(problems[0].message.contains("never closed"), "{problems:?}");
    }

    #[test]
    fn every_problem_comes_at_once_settings_sql_and_graph() {
        let request = spec(vec![
            Table {
                frequency: Some("weekly".into()),
                ..table("d.a", "SELECT 1 AS x")
            },
            table("d.b", "SELECT (1"),
            table("d.c", "SELECT * FROM d.d"),
            table("d.d", "SELECT * FROM d.c"),
        ]);
        let problems = plan_apply(&[], &[], &request, false, "p", now()).unwrap_err();
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(messages.len(), 3, "{problems:?}");
        assert_eq!(messages[0], "frequency `weekly` is not defined");
        assert!(messages[1].contains("never closed"), "{problems:?}");
        assert!(
            messages[2].starts_with("dependency cycle: "),
            "{problems:?}"
        );
    }

    #[test]
    fn pruning_deletes_what_the_request_leaves_out() {
        let first = plan_apply(
            &[],
            &[],
            &spec(vec![table("d.a", "SELECT 1"), table("d.b", "SELECT 1")]),
            false,
            "p",
            now(),
        )
        .unwrap();
        let kept = plan_apply(
            &first.write_frequencies,
            &first.write_tables,
            &spec(vec![table("d.a", "SELECT 1")]),
            false,
            "p",
            now(),
        )
        .unwrap();
        assert!(kept.delete_tables.is_empty());
        let pruned = plan_apply(
            &first.write_frequencies,
            &first.write_tables,
            &spec(vec![table("d.a", "SELECT 1")]),
            true,
            "p",
            now(),
        )
        .unwrap();
        assert_eq!(pruned.delete_tables, vec![id("d.b")]);
    }

    #[test]
    fn explicit_dependencies_must_exist() {
        let mut t = table("d.a", "SELECT 1");
        t.depends_on = vec![id("d.missing")];
        let problems = plan_apply(&[], &[], &spec(vec![t]), false, "p", now()).unwrap_err();
        assert!(problems[0].message.contains("d.missing"));
    }

    #[test]
    fn a_table_whose_script_writes_a_side_table_is_its_readers_parent() {
        let request = spec(vec![
            table(
                "d.producer",
                "CREATE OR REPLACE TABLE d.side AS SELECT 1 AS x;\nSELECT * FROM d.side",
            ),
            table("d.consumer", "SELECT * FROM d.side"),
        ]);
        let plan = plan_apply(&[], &[], &request, false, "p", now()).unwrap();
        assert_eq!(plan.dependencies[&id("d.consumer")], vec![id("d.producer")]);
        assert!(
            plan.dependencies[&id("d.producer")].is_empty(),
            "reading what it wrote is no dependency"
        );
        let producer = plan
            .write_tables
            .iter()
            .find(|d| d.id == id("d.producer"))
            .unwrap();
        assert_eq!(producer.writes, ["p.d.side"]);
        assert!(producer.external.is_empty());
    }

    #[test]
    fn a_wildcard_depends_on_every_table_it_matches() {
        let request = spec(vec![
            table("ga.events_20260101", "SELECT 1 AS e"),
            table("ga.events_20260102", "SELECT 2 AS e"),
            table("ga.eventsx", "SELECT 3 AS e"),
            table("ga.report", "SELECT COUNT(*) FROM ga.events_*"),
        ]);
        let plan = plan_apply(&[], &[], &request, false, "p", now()).unwrap();
        assert_eq!(
            plan.dependencies[&id("ga.report")],
            vec![id("ga.events_20260101"), id("ga.events_20260102")]
        );
    }

    #[test]
    fn reading_itself_is_no_cycle() {
        let request = spec(vec![table(
            "d.log",
            "SELECT * FROM d.src WHERE ts > (SELECT MAX(ts) FROM d.log)",
        )]);
        let plan = plan_apply(&[], &[], &request, false, "p", now()).unwrap();
        assert!(plan.dependencies[&id("d.log")].is_empty());
        let doc = &plan.write_tables[0];
        assert_eq!(
            doc.external,
            ["p.d.src"],
            "its own table is not an external source"
        );
    }

    #[test]
    fn a_stored_answer_is_reused_only_for_the_same_sql_and_reader() {
        let first = plan_apply(
            &[],
            &[],
            &spec(vec![table("d.a", "SELECT * FROM d.x")]),
            false,
            "p",
            now(),
        )
        .unwrap();
        let mut stored = first.write_tables.clone();
        stored[0].reads = vec!["p.d.marker".into()];
        let again = plan_apply(
            &first.write_frequencies,
            &stored,
            &spec(vec![table("d.a", "SELECT * FROM d.x")]),
            false,
            "p",
            now(),
        )
        .unwrap();
        assert_eq!(
            again.write_tables[0].reads,
            ["p.d.marker"],
            "unchanged SQL is not read again"
        );
        stored[0].analyzer = 0;
        let reread = plan_apply(
            &first.write_frequencies,
            &stored,
            &spec(vec![table("d.a", "SELECT * FROM d.x")]),
            false,
            "p",
            now(),
        )
        .unwrap();
        assert_eq!(
            reread.write_tables[0].reads,
            ["p.d.x"],
            "an older reader's answer is replaced"
        );
    }

    #[test]
    fn lenient_and_unknowable_sql_is_accepted_with_warnings() {
        let request = spec(vec![
            table("d.a", "EXECUTE IMMEDIATE CONCAT('SELECT * FROM ', 'd.x')"),
            table("d.b", "SELECT * FROM d.t a b"),
        ]);
        let plan = plan_apply(&[], &[], &request, false, "p", now()).unwrap();
        assert_eq!(plan.warnings.len(), 2, "{:?}", plan.warnings);
        assert!(plan.warnings[0].message.contains("EXECUTE IMMEDIATE"));
        assert!(plan.warnings[1].message.contains("keywords alone"));
    }

    #[test]
    fn many_tables_are_read_in_parallel_in_order() {
        let tables: Vec<Table> = (0..500)
            .map(|i| table(&format!("d.t{i:03}"), &format!("SELECT * FROM d.src{i}")))
            .collect();
        let refs: Vec<&Table> = tables.iter().collect();
        let answers = analyze_all(&refs, "p");
        for (i, a) in answers.iter().enumerate() {
            assert_eq!(
                a.as_ref().unwrap().reads.iter().next().unwrap(),
                &format!("p.d.src{i}")
            );
        }
    }

    /// The stored shape of a table.
    #[test]
    fn golden_table_document() {
        let plan = plan_apply(
            &[],
            &[],
            &spec(vec![table("d.a", "SELECT * FROM x.y")]),
            false,
            "p",
            now(),
        )
        .unwrap();
        let golden = serde_json::json!({
            "schema_version": 1,
            "id": "d.a",
            "definition": {
                "dataset": "d", "name": "a", "kind": "query", "sql": "SELECT * FROM x.y",
                "frequency": "daily", "write_mode": "truncate", "description": null,
                "options": {
                    "key": [], "delete_flag": null, "partitioning": null, "clustering": [],
                    "expiration_seconds": null, "max_bytes_billed": null, "timeout_seconds": null,
                    "retries": null, "extract": null
                },
                "owner": null, "group": null, "depends_on": [], "conditions": [],
                "source": "d/a.sql"
            },
            "reads": ["p.x.y"],
            "writes": [],
            "lenient": false,
            "unknowable": [],
            "parameters": [],
            "analyzer": ANALYZER_VERSION,
            "parents": [],
            "external": ["p.x.y"],
            "updated_at": "2026-11-22T10:00:00Z"
        });
        assert_eq!(serde_json::to_value(&plan.write_tables[0]).unwrap(), golden);
    }

    /// A table stored before it had options reads as one with none.
    #[test]
    fn a_table_stored_without_options_has_the_defaults() {
        let stored = serde_json::json!({
            "dataset": "d", "name": "a", "kind": "query", "sql": "SELECT 1",
            "frequency": null, "write_mode": "truncate", "description": null,
            "owner": null, "group": null, "depends_on": [], "conditions": [], "source": null
        });
        let table: Table = serde_json::from_value(stored).unwrap();
        assert_eq!(*table.options, crate::catalog::TableOptions::default());
    }
}
