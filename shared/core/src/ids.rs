//! Deterministic ids. The same work always gets the same id, so that a repeated tick, a
//! redelivered message or a restarted process finds the work already there.

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::catalog::TableId;

/// The id of a frequency's run at a scheduled instant: `daily-20261122T020000Z`. Readable in
/// the Firestore console, sorted by time within a frequency.
pub fn scheduled_run_id(frequency: &str, instant: Timestamp) -> String {
    format!("{frequency}-{}", instant.strftime("%Y%m%dT%H%M%SZ"))
}

/// The id of a backfill of a frequency, requested at `now`; `nonce` (random) keeps two
/// requests of one second apart.
pub fn backfill_id(frequency: &str, now: Timestamp, nonce: u32) -> String {
    format!(
        "{frequency}-backfill-{}-{nonce:08x}",
        now.strftime("%Y%m%dT%H%M%SZ")
    )
}

/// The id of a backfill's run for one instant.
pub fn backfill_run_id(backfill: &str, instant: Timestamp) -> String {
    format!("{backfill}-{}", instant.strftime("%Y%m%dT%H%M%SZ"))
}

/// The id of a manual run: the caller's idempotency key when given (a retried request then
/// finds the run it created), else what it runs, when it was asked, and `nonce` (random), which
/// keeps two requests of one instant apart.
pub fn manual_run_id(what: &str, key: Option<&str>, now: Timestamp, nonce: u32) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .take(100)
            .collect()
    };
    match key {
        Some(key) => format!("manual-{}", clean(key)),
        None => format!(
            "{}-manual-{}-{nonce:08x}",
            clean(what),
            now.strftime("%Y%m%dT%H%M%SZ")
        ),
    }
}

/// The longest id a path may carry (Firestore allows 1,500 bytes; Baton's own ids are far
/// shorter).
pub const MAX_PATH_ID_BYTES: usize = 256;

/// Checks an id taken from a request's path (a run, backfill, connection, group, user or
/// token) before it reaches storage: 1 to 256 bytes of letters, digits and `-_.:@+`, not `.`
/// or `..` and not Firestore's reserved `__…__`. What it says names `what` and the id.
pub fn validate_path_id(what: &str, id: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.:@+".contains(c);
    if id.is_empty() || id.len() > MAX_PATH_ID_BYTES {
        return Err(format!(
            "a {what} id has 1 to {MAX_PATH_ID_BYTES} bytes, not {}",
            id.len()
        ));
    }
    if let Some(c) = id.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "a {what} id has only letters, digits and `-_.:@+`; `{}` has {c:?}",
            id.escape_default()
        ));
    }
    if id == "." || id == ".." || (id.starts_with("__") && id.ends_with("__")) {
        return Err(format!("`{id}` is not a {what} id"));
    }
    Ok(())
}

/// How the BigQuery job ids of a run begin (when the run id is short enough to be kept whole,
/// as every id Baton makes is).
pub fn bigquery_job_prefix(run_id: &str) -> String {
    job_id_chars(&format!("baton_{run_id}_")).collect()
}

/// The characters of `s`, those BigQuery refuses in a job id replaced by `_`.
fn job_id_chars(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            c
        } else {
            '_'
        }
    })
}

/// The BigQuery job id of one attempt of one table's job in a run.
///
/// BigQuery allows letters, digits, `_` and `-` (up to 1,024 characters), so the readable part
/// has every other character replaced, and a hash of the exact triple keeps two tables that
/// differ only in those characters (`a_b.c` and `a.b_c`) from sharing an id.
pub fn bigquery_job_id(run_id: &str, table: &TableId, attempt: u32) -> String {
    let readable: String = job_id_chars(&format!("baton_{run_id}_{table}_{attempt}"))
        .take(200)
        .collect();
    let digest = Sha256::digest(format!("{run_id}\n{table}\n{attempt}").as_bytes());
    format!("{readable}_{}", &hex::encode(digest)[..12])
}

/// A BigQuery label value: lowercase letters, digits, `_` and `-`, at most 63 characters.
/// Anything else becomes `_`, so that `ana@example.com` reads `ana_example_com`.
pub fn label_value(value: &str) -> String {
    value
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_read_as_frequency_and_instant() {
        let instant: Timestamp = "2026-11-22T02:00:00Z".parse().unwrap();
        assert_eq!(scheduled_run_id("daily", instant), "daily-20261122T020000Z");
    }

    #[test]
    fn manual_and_backfill_ids_read_as_what_and_when() {
        let now: Timestamp = "2026-11-22T10:15:00.250Z".parse().unwrap();
        assert_eq!(
            manual_run_id("daily", None, now, 0xbeef),
            "daily-manual-20261122T101500Z-0000beef"
        );
        assert_eq!(
            manual_run_id("shop.orders", None, now, 1),
            "shop-orders-manual-20261122T101500Z-00000001"
        );
        assert_eq!(
            manual_run_id("daily", Some("deploy 42/x"), now, 1),
            "manual-deploy-42-x"
        );
        let backfill = backfill_id("daily", now, 0xbeef);
        assert_eq!(backfill, "daily-backfill-20261122T101500Z-0000beef");
        let instant: Timestamp = "2026-11-01T02:00:00Z".parse().unwrap();
        assert_eq!(
            backfill_run_id(&backfill, instant),
            "daily-backfill-20261122T101500Z-0000beef-20261101T020000Z"
        );
    }

    #[test]
    fn label_values_follow_bigquerys_rules() {
        assert_eq!(label_value("Ana@Example.com"), "ana_example_com");
        assert_eq!(
            label_value("daily-20261122T020000Z"),
            "daily-20261122t020000z"
        );
        assert_eq!(label_value(&"x".repeat(100)).len(), 63);
    }

    #[test]
    fn bigquery_job_ids_are_stable_valid_and_distinct() {
        let t = |s: &str| s.parse::<TableId>().unwrap();
        let id = bigquery_job_id("daily-20261122T020000Z", &t("shop.orders"), 1);
        assert_eq!(
            id,
            bigquery_job_id("daily-20261122T020000Z", &t("shop.orders"), 1)
        );
        assert!(id.starts_with("baton_daily-20261122T020000Z_shop_orders_1_"));
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        );
        assert_ne!(
            id,
            bigquery_job_id("daily-20261122T020000Z", &t("shop.orders"), 2)
        );
        assert_ne!(
            bigquery_job_id("r", &t("a_b.c"), 1),
            bigquery_job_id("r", &t("a.b_c"), 1)
        );
        let long = "x".repeat(900);
        assert!(bigquery_job_id("r", &t(&format!("d.{long}")), 1).len() <= 1024);
    }

    #[test]
    fn ids_from_paths_are_checked_before_storage() {
        for good in [
            "daily-20261122T020000Z",
            "shop.orders-manual-x",
            "ana+1@example.com",
        ] {
            assert_eq!(validate_path_id("run", good), Ok(()), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "__x__", "a b", "é", &"x".repeat(257)] {
            let err = validate_path_id("run", bad).unwrap_err();
            assert!(
                err.contains("run id") || err.contains("not a run"),
                "{bad}: {err}"
            );
        }
    }
}
