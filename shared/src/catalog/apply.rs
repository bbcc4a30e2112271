//! Applying a catalog change: what to write, what to delete, and why not when it is wrong.
//!
//! Pure: the stored catalog and the request in, the plan (or every problem) out. The API
//! performs the plan. Dependencies are recomputed for the whole resulting catalog, because a
//! table added now can be the parent of one stored long ago.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{CatalogSpec, Frequency, Problem, Table, TableId};
use crate::dag;
use crate::sql::{self, Defaults};

pub const TABLE_SCHEMA_VERSION: u32 = 1;

/// `tables/{dataset.table}`: a table's definition and what Baton inferred from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableDoc {
    pub schema_version: u32,
    pub id: TableId,
    pub definition: Table,
    /// Every table its SQL reads, `project.dataset.table`.
    pub reads: Vec<String>,
    /// The catalog tables it depends on: those it reads, and its explicit `depends_on`.
    pub parents: Vec<TableId>,
    #[serde(with = "firestore::serialize_as_timestamp")]
    pub updated_at: Timestamp,
}

impl TableDoc {
    /// Whether two documents say the same, whenever they were written.
    fn same_as(&self, other: &TableDoc) -> bool {
        self.definition == other.definition
            && self.reads == other.reads
            && self.parents == other.parents
    }
}

/// What a change did to one table or frequency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Updated,
    Unchanged,
    Deleted,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// `table` or `frequency`.
    pub kind: String,
    pub id: String,
    pub action: Action,
}

/// The writes and deletes that make the stored catalog what the request asks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ApplyPlan {
    pub write_frequencies: Vec<Frequency>,
    pub write_tables: Vec<TableDoc>,
    pub delete_frequencies: Vec<String>,
    pub delete_tables: Vec<TableId>,
    pub changes: Vec<Change>,
    /// Every table of the resulting catalog with its parents.
    pub dependencies: BTreeMap<TableId, Vec<TableId>>,
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
    let requested_frequencies: BTreeSet<String> =
        request.frequencies.iter().map(|f| f.name.clone()).collect();
    let kept_frequencies: BTreeSet<String> = if prune {
        BTreeSet::new()
    } else {
        stored_frequencies.iter().map(|f| f.name.clone()).collect()
    };
    let mut problems = request.validate(&kept_frequencies);
    if !problems.is_empty() {
        return Err(problems);
    }

    // Every table of the resulting catalog, with its definition and reads.
    let mut resulting: BTreeMap<TableId, (Table, Vec<String>)> = BTreeMap::new();
    if !prune {
        for doc in stored_tables {
            resulting.insert(doc.id.clone(), (doc.definition.clone(), doc.reads.clone()));
        }
    }
    for table in &request.tables {
        let id = table.id().expect("validated");
        let defaults = Defaults {
            project: project.to_string(),
            dataset: table.dataset.clone(),
        };
        match sql::analyze(&table.sql, Some(&defaults)) {
            Ok(analysis) => {
                resulting.insert(id, (table.clone(), analysis.reads.into_iter().collect()));
            }
            Err(e) => problems.push(Problem {
                at: if e.line > 0 {
                    format!("{}:{}:{}", table.origin(), e.line, e.column)
                } else {
                    table.origin()
                },
                message: e.message,
            }),
        }
    }

    // Tables kept from the store may use a frequency only if it stays.
    let frequencies_after: BTreeSet<&String> = requested_frequencies
        .iter()
        .chain(&kept_frequencies)
        .collect();
    for (id, (table, _)) in &resulting {
        if let Some(f) = &table.frequency
            && !frequencies_after.contains(f)
        {
            problems.push(Problem {
                at: table.origin(),
                message: format!("table {id} uses frequency `{f}`, which this change deletes"),
            });
        }
    }

    let prefix = format!("{project}.");
    let mut dependencies: BTreeMap<TableId, Vec<TableId>> = BTreeMap::new();
    for (id, (table, reads)) in &resulting {
        let mut parents: BTreeSet<TableId> = reads
            .iter()
            .filter_map(|r| r.strip_prefix(&prefix))
            .filter_map(|r| r.parse::<TableId>().ok())
            .filter(|t| resulting.contains_key(t))
            .collect();
        for explicit in &table.depends_on {
            if resulting.contains_key(explicit) {
                parents.insert(explicit.clone());
            } else {
                problems.push(Problem {
                    at: table.origin(),
                    message: format!("depends_on names {explicit}, which is not in the catalog"),
                });
            }
        }
        dependencies.insert(id.clone(), parents.into_iter().collect());
    }
    if let Err(cycle) = dag::check_acyclic(&dependencies) {
        let first = &cycle.path[0];
        problems.push(Problem {
            at: resulting[first].0.origin(),
            message: cycle.to_string(),
        });
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let mut plan = ApplyPlan {
        dependencies,
        ..ApplyPlan::default()
    };
    let stored_by_id: BTreeMap<&TableId, &TableDoc> =
        stored_tables.iter().map(|d| (&d.id, d)).collect();
    for (id, (table, reads)) in &resulting {
        let doc = TableDoc {
            schema_version: TABLE_SCHEMA_VERSION,
            id: id.clone(),
            definition: table.clone(),
            reads: reads.clone(),
            parents: plan.dependencies[id].clone(),
            updated_at: now,
        };
        let action = match stored_by_id.get(id) {
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
        if !resulting.contains_key(&doc.id) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{TableKind, WriteMode};

    fn now() -> Timestamp {
        "2026-11-22T10:00:00Z".parse().unwrap()
    }

    fn table(id: &str, sql: &str) -> Table {
        let (dataset, name) = id.split_once('.').unwrap();
        Table {
            dataset: dataset.into(),
            name: name.into(),
            kind: TableKind::Query,
            sql: sql.into(),
            frequency: Some("daily".into()),
            write_mode: WriteMode::Truncate,
            description: None,
            owner: None,
            group: None,
            depends_on: vec![],
            source: Some(format!("{dataset}/{name}.sql")),
        }
    }

    fn daily() -> Frequency {
        Frequency {
            name: "daily".into(),
            period_seconds: 86_400,
            offset_seconds: 0,
            active: true,
            concurrency: None,
            description: None,
        }
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
        let request = spec(vec![table("d.a", "SELECT a\nFROM t\nWHERE a = = 1")]);
        let problems = plan_apply(&[], &[], &request, false, "p", now()).unwrap_err();
        assert_eq!(problems[0].at, "d/a.sql:3:11", "{problems:?}");
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
                "owner": null, "group": null, "depends_on": [], "source": "d/a.sql"
            },
            "reads": ["p.x.y"],
            "parents": [],
            "updated_at": "2026-11-22T10:00:00Z"
        });
        assert_eq!(serde_json::to_value(&plan.write_tables[0]).unwrap(), golden);
    }
}
