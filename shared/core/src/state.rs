//! Run and job states, and the transitions between them, written down once. Every write of a
//! state goes through `JobState::can_become` or `RunState::can_become`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::catalog::TableId;

/// A job's state inside its run.
///
/// `pending` waits for parents; `queued` has its parents done and waits for a slot under the
/// run's concurrency cap, then is dispatched to the executor (still `queued` until the
/// executor starts it); `running` has a BigQuery job; the rest are final for the attempt.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
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
pub enum JobState {
    Pending,
    Queued,
    Running,
    Succeeded,
    Failed,
    /// Not run because an ancestor failed.
    Skipped,
    Cancelled,
}

impl JobState {
    pub const OPEN: [JobState; 3] = [JobState::Pending, JobState::Queued, JobState::Running];

    pub fn is_terminal(self) -> bool {
        !Self::OPEN.contains(&self)
    }

    /// The state's name, as stored (serde's name).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The legal transitions.
    pub fn can_become(self, to: JobState) -> bool {
        use JobState::*;
        matches!(
            (self, to),
            (Pending, Queued | Skipped | Cancelled)
                | (Queued, Running | Cancelled)
                | (Running, Succeeded | Failed | Cancelled)
                // A transient failure: the job goes again as a new attempt, keeping its slot.
                | (Running, Queued)
                // A resumed run: what did not succeed waits for its parents again.
                | (Failed | Skipped | Cancelled, Pending)
        )
    }

    /// `Ok` when the transition is legal, else the error that says which it was.
    pub fn check(self, to: JobState) -> Result<(), IllegalTransition> {
        if self.can_become(to) {
            Ok(())
        } else {
            Err(IllegalTransition {
                what: "job",
                from: self.as_str(),
                to: to.as_str(),
            })
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run's state.
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
pub enum RunState {
    /// Created by the tick or the API; the planner has not frozen its plan yet.
    Created,
    /// The planner is writing the plan's job documents.
    Planning,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// Not started: another run of its frequency was still open at its instant.
    Skipped,
}

impl RunState {
    /// Ended: nothing more happens unless a failed run is resumed.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::Failed | RunState::Cancelled | RunState::Skipped
        )
    }

    /// The state's name, as stored (serde's name).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn can_become(self, to: RunState) -> bool {
        use RunState::*;
        matches!(
            (self, to),
            (Created, Planning | Failed | Cancelled)
                | (Planning, Running | Failed | Cancelled)
                | (Running, Succeeded | Failed | Cancelled)
                | (Failed, Running)
        )
    }

    pub fn check(self, to: RunState) -> Result<(), IllegalTransition> {
        if self.can_become(to) {
            Ok(())
        } else {
            Err(IllegalTransition {
                what: "run",
                from: self.as_str(),
                to: to.as_str(),
            })
        }
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {what} cannot go from {from} to {to}")]
pub struct IllegalTransition {
    pub what: &'static str,
    pub from: &'static str,
    pub to: &'static str,
}

/// Whether a pending job can be queued, from its parents' states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Every parent succeeded.
    Ready,
    /// Some parent has not finished.
    Waiting,
    /// This parent ended without succeeding: the job will be skipped.
    Blocked(TableId),
}

pub fn readiness<'a>(parents: impl IntoIterator<Item = (&'a TableId, JobState)>) -> Readiness {
    let mut waiting = false;
    for (table, state) in parents {
        match state {
            JobState::Succeeded => {}
            JobState::Failed | JobState::Skipped | JobState::Cancelled => {
                return Readiness::Blocked(table.clone());
            }
            JobState::Pending | JobState::Queued | JobState::Running => waiting = true,
        }
    }
    if waiting {
        Readiness::Waiting
    } else {
        Readiness::Ready
    }
}

/// The order in which waiting jobs take free slots: most descendants first (Maestro's rule),
/// then by table id so that the order is stable.
pub fn dispatch_order(waiting: &mut [(TableId, u32)]) {
    waiting.sort_by(|(a, pa), (b, pb)| pb.cmp(pa).then_with(|| a.cmp(b)));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each name, as the code writes and reads it, is serde's: one truth for both.
    fn names_are_serdes<E>()
    where
        E: strum::IntoEnumIterator + Into<&'static str> + std::str::FromStr + serde::Serialize,
        E: PartialEq + std::fmt::Debug + Copy,
    {
        for variant in E::iter() {
            let name: &'static str = variant.into();
            assert_eq!(serde_json::to_value(variant).unwrap(), name);
            assert_eq!(name.parse::<E>().ok(), Some(variant));
        }
    }

    #[test]
    fn the_names_code_writes_are_serdes() {
        names_are_serdes::<JobState>();
        names_are_serdes::<RunState>();
        names_are_serdes::<crate::catalog::WriteMode>();
        names_are_serdes::<crate::costs::Dimension>();
        assert_eq!(crate::catalog::WriteMode::NAMES.len(), 5);
        assert_eq!(
            crate::catalog::WriteMode::InsertUnique.name(),
            "insert_unique"
        );
    }

    const ALL: [JobState; 7] = [
        JobState::Pending,
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Skipped,
        JobState::Cancelled,
    ];

    #[test]
    fn ended_jobs_only_go_back_to_pending_on_a_resume() {
        for from in ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in ALL {
                let resume = from != JobState::Succeeded && to == JobState::Pending;
                assert_eq!(from.can_become(to), resume, "{from} → {to}");
            }
        }
    }

    #[test]
    fn a_job_only_runs_after_being_queued() {
        let into_running: Vec<_> = ALL
            .into_iter()
            .filter(|s| s.can_become(JobState::Running))
            .collect();
        assert_eq!(into_running, vec![JobState::Queued]);
        assert_eq!(
            JobState::Pending
                .check(JobState::Running)
                .unwrap_err()
                .to_string(),
            "a job cannot go from pending to running"
        );
    }

    #[test]
    fn serialized_states_are_the_words_people_read() {
        assert_eq!(
            serde_json::to_string(&JobState::Succeeded).unwrap(),
            "\"succeeded\""
        );
        assert_eq!(
            serde_json::to_string(&RunState::Planning).unwrap(),
            "\"planning\""
        );
        for s in ALL {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
    }

    #[test]
    fn readiness_needs_every_parent_succeeded() {
        let a: TableId = "d.a".parse().unwrap();
        let b: TableId = "d.b".parse().unwrap();
        assert_eq!(readiness([]), Readiness::Ready);
        assert_eq!(
            readiness([(&a, JobState::Succeeded), (&b, JobState::Running)]),
            Readiness::Waiting
        );
        assert_eq!(
            readiness([(&a, JobState::Succeeded), (&b, JobState::Succeeded)]),
            Readiness::Ready
        );
        assert_eq!(
            readiness([(&a, JobState::Running), (&b, JobState::Failed)]),
            Readiness::Blocked(b.clone())
        );
        assert_eq!(
            readiness([(&a, JobState::Skipped)]),
            Readiness::Blocked(a.clone())
        );
    }

    #[test]
    fn dispatch_prefers_more_descendants_then_the_id() {
        let t = |s: &str| s.parse::<TableId>().unwrap();
        let mut waiting = vec![(t("d.c"), 1), (t("d.a"), 1), (t("d.b"), 5), (t("d.z"), 0)];
        dispatch_order(&mut waiting);
        let order: Vec<String> = waiting.iter().map(|(id, _)| id.to_string()).collect();
        assert_eq!(order, ["d.b", "d.a", "d.c", "d.z"]);
    }
}
