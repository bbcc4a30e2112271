//! Cost roll-ups: what the BigQuery jobs of each day cost, by table, user, group and
//! frequency.
//!
//! Each ended job adds its figures to one document per dimension, in the same transaction
//! that records it ended, so a redelivery adds nothing twice. A group's or a frequency's
//! document would be hot (every job of a run finishing at once would write it), so each
//! (day, dimension, value) is split over `SHARDS` documents and a job writes the shard its
//! table hashes to; reading sums the shards.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalog::TableId;
use crate::run::Job;

/// `cost_rollups/{day}.{dimension}.{shard}.{value}`.
pub const COLLECTION: &str = "cost_rollups";

/// Documents per (day, dimension, value): Firestore sustains about one write a second on a
/// document, so a group gets this many.
pub const SHARDS: u32 = 16;

/// What costs are rolled up by.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantNames,
    strum::EnumIter,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Dimension {
    Table,
    User,
    Group,
    Frequency,
}

impl Dimension {
    pub const ALL: [Dimension; 4] = [
        Dimension::Table,
        Dimension::User,
        Dimension::Group,
        Dimension::Frequency,
    ];

    pub fn name(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// The value recorded for a job attributed to nobody, or a run of no frequency.
pub const NONE: &str = "(none)";

/// The fixed fields of one roll-up document; the figures are added to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RollupKey {
    /// The UTC day the jobs ended, `YYYY-MM-DD`.
    pub day: String,
    pub dimension: Dimension,
    pub value: String,
    pub shard: u32,
}

impl RollupKey {
    /// The document id: readable in the console, `/` escaped (Firestore forbids it in ids).
    pub fn id(&self) -> String {
        let value = self.value.replace('%', "%25").replace('/', "%2F");
        format!(
            "{}.{}.{}.{}",
            self.day,
            self.dimension.name(),
            self.shard,
            value
        )
    }
}

/// A roll-up document: its key and the sums of the jobs added to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Rollup {
    pub day: String,
    pub dimension: Dimension,
    pub value: String,
    #[serde(default)]
    pub shard: u32,
    #[serde(default)]
    pub jobs: i64,
    #[serde(default)]
    pub cost: f64,
    #[serde(default)]
    pub bytes_billed: i64,
    #[serde(default)]
    pub bytes_processed: i64,
    #[serde(default)]
    pub slot_ms: i64,
}

/// The documents an ended job adds to: one per dimension, in its table's shard.
pub fn keys(job: &Job, frequency: Option<&str>, ended: jiff::Timestamp) -> Vec<RollupKey> {
    let day = ended.strftime("%Y-%m-%d").to_string();
    let shard = shard(&job.table);
    let or_none = |v: Option<&str>| v.unwrap_or(NONE).to_string();
    [
        (Dimension::Table, job.table.to_string()),
        (Dimension::User, or_none(job.attributed_user.as_deref())),
        (Dimension::Group, or_none(job.attributed_group.as_deref())),
        (Dimension::Frequency, or_none(frequency)),
    ]
    .into_iter()
    .map(|(dimension, value)| RollupKey {
        day: day.clone(),
        dimension,
        value,
        shard,
    })
    .collect()
}

/// A table's shard: the same for every job of the table, spread across tables.
pub fn shard(table: &TableId) -> u32 {
    let digest = Sha256::digest(table.to_string().as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % SHARDS
}

/// One day's total for one value of a dimension.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CostRow {
    pub day: String,
    pub value: String,
    pub jobs: i64,
    pub cost: f64,
    pub bytes_billed: i64,
    pub bytes_processed: i64,
    pub slot_ms: i64,
}

/// Sums shards into a row per (day, value): by day, then the costliest first.
pub fn totals(rollups: impl IntoIterator<Item = Rollup>) -> Vec<CostRow> {
    let mut by: std::collections::BTreeMap<(String, String), CostRow> = Default::default();
    for r in rollups {
        let row = by
            .entry((r.day.clone(), r.value.clone()))
            .or_insert_with(|| CostRow {
                day: r.day,
                value: r.value,
                ..CostRow::default()
            });
        row.jobs += r.jobs;
        row.cost += r.cost;
        row.bytes_billed += r.bytes_billed;
        row.bytes_processed += r.bytes_processed;
        row.slot_ms += r.slot_ms;
    }
    let mut rows: Vec<CostRow> = by.into_values().collect();
    rows.sort_by(|a, b| {
        a.day
            .cmp(&b.day)
            .then(b.cost.total_cmp(&a.cost))
            .then(a.value.cmp(&b.value))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollup(day: &str, value: &str, shard: u32, cost: f64) -> Rollup {
        Rollup {
            day: day.into(),
            dimension: Dimension::Group,
            value: value.into(),
            shard,
            jobs: 1,
            cost,
            bytes_billed: 10,
            bytes_processed: 0,
            slot_ms: 0,
        }
    }

    #[test]
    fn shards_are_summed_per_day_and_value_costliest_first() {
        let rows = totals([
            rollup("2026-11-02", "ads", 3, 1.0),
            rollup("2026-11-01", "ads", 3, 1.0),
            rollup("2026-11-01", "ads", 7, 2.0),
            rollup("2026-11-01", "finance", 1, 5.0),
        ]);
        let seen: Vec<(&str, &str, i64, f64, i64)> = rows
            .iter()
            .map(|r| {
                (
                    r.day.as_str(),
                    r.value.as_str(),
                    r.jobs,
                    r.cost,
                    r.bytes_billed,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("2026-11-01", "finance", 1, 5.0, 10),
                ("2026-11-01", "ads", 2, 3.0, 20),
                ("2026-11-02", "ads", 1, 1.0, 10),
            ]
        );
    }

    #[test]
    fn a_tables_jobs_keep_to_one_shard_and_tables_spread_over_all() {
        let table = |i: usize| -> TableId { format!("shop.t{i}").parse().unwrap() };
        assert_eq!(shard(&table(1)), shard(&table(1)));
        let used: std::collections::HashSet<u32> = (0..400).map(|i| shard(&table(i))).collect();
        assert_eq!(used.len(), SHARDS as usize, "400 tables use every shard");
    }

    #[test]
    fn ids_are_readable_and_escape_slashes() {
        let key = RollupKey {
            day: "2026-11-23".into(),
            dimension: Dimension::User,
            value: "ops/100%@acme.com".into(),
            shard: 4,
        };
        assert_eq!(key.id(), "2026-11-23.user.4.ops%2F100%25@acme.com");
        assert_eq!(Dimension::parse("group"), Some(Dimension::Group));
        assert_eq!(Dimension::parse("team"), None);
    }
}
