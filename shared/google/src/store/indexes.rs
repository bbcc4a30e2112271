//! The composite indexes Firestore needs for Baton's queries, in one place: each query names
//! the index that serves it, Terraform declares each (`terraform/firestore.tf`), and
//! `tests/e2e/terraform.rs` checks that the two lists agree. The emulator needs none, so only
//! that check stands between a new query and a production "the query requires an index".

use crate::store::JOBS;
use baton_core::costs;

/// The order of one field in an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

/// A composite index on the collection id `collection`: for queries within one parent
/// (Firestore's `COLLECTION` scope), or across every parent (`COLLECTION_GROUP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    pub collection: &'static str,
    pub group: bool,
    pub fields: &'static [(&'static str, Order)],
}

/// The planner's next jobs to dispatch: queued, not dispatched, most important first
/// (`RunPort::waiting_jobs`).
pub const WAITING_JOBS: Index = Index {
    collection: JOBS,
    group: false,
    fields: &[
        ("state", Order::Ascending),
        ("dispatched", Order::Ascending),
        ("priority", Order::Descending),
        ("table", Order::Ascending),
    ],
};

/// The queued jobs one planner event dispatched, to send again (`RunPort::dispatched_by`).
pub const JOBS_BY_DISPATCH_CAUSE: Index = Index {
    collection: JOBS,
    group: false,
    fields: &[
        ("dispatch_cause", Order::Ascending),
        ("state", Order::Ascending),
    ],
};

/// A dimension's roll-ups over a range of days (`Store::costs`).
pub const COST_ROLLUPS: Index = Index {
    collection: costs::COLLECTION,
    group: false,
    fields: &[("dimension", Order::Ascending), ("day", Order::Ascending)],
};

/// A load table's files in one state, the longest waiting first (`Store::files_in_state`).
pub const FILES_BY_STATE: Index = Index {
    collection: crate::store::loads::FILES,
    group: false,
    fields: &[("state", Order::Ascending), ("arrived", Order::Ascending)],
};

/// The tick's sweep: jobs of every run whose watch has passed, the longest overdue first
/// (`Store::overdue_jobs`).
pub const OVERDUE_JOBS: Index = Index {
    collection: JOBS,
    group: true,
    fields: &[("state", Order::Ascending), ("watch_at", Order::Ascending)],
};

/// A table's jobs in every run, the latest first (`Store::table_jobs`, the page's table).
pub const TABLE_JOBS: Index = Index {
    collection: JOBS,
    group: true,
    fields: &[("table", Order::Ascending), ("run_time", Order::Descending)],
};

/// Every composite index the queries need.
pub const INDEXES: [Index; 6] = [
    WAITING_JOBS,
    JOBS_BY_DISPATCH_CAUSE,
    COST_ROLLUPS,
    FILES_BY_STATE,
    OVERDUE_JOBS,
    TABLE_JOBS,
];
