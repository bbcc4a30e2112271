//! Fuzzing what the services read from the network: Pub/Sub push envelopes (whatever the
//! bytes, a push is decoded into the service's message or refused with a reason, which
//! acknowledges it), and the API's JSON bodies (each request type from valid bodies mutated,
//! noise, and bodies up to 1 MB: the request or a 400 that says where). No panic, and an
//! answer within a bound far above its expected time (a hang detector).
//!
//! `BATON_FUZZ_CASES` is how many inputs each property tries (48 unless told).

use std::time::{Duration, Instant};

use base64::Engine;
use proptest::prelude::*;
use serde::de::DeserializeOwned;

use baton_core::messages::{ExecutorTask, ImporterTask, PlannerEvent};
use baton_service::api;
use baton_service::http::{decode_push, from_json};

const MAX_INPUT: usize = 1 << 20;
const HANG: Duration = Duration::from_secs(20);

fn cases() -> u32 {
    std::env::var("BATON_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(48)
}

/// Valid bodies of each of the API's request types, and what reads them.
const BODIES: &[&str] = &[
    r#"{"catalog": {"frequencies": [{"name": "daily", "every_seconds": 86400}], "tables": [{"dataset": "d", "name": "t", "kind": "query", "sql": "SELECT 1 AS x", "frequency": "daily"}]}, "prune": false, "dry_run": true}"#,
    r#"{"frequency": "daily", "idempotency_key": "k"}"#,
    r#"{"tables": ["d.t", "d.u"], "downstream": true}"#,
    r#"{"frequency": "daily", "from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"}"#,
    r#"{"sql": "SELECT 1 AS x", "dataset": "d"}"#,
    r#"{"kind": "postgres", "secret": "postgres://u:p@h/db", "description": "x"}"#,
    r#"{"name": "ci", "expires_in_days": 30}"#,
    r#"{"enabled": true, "role": "member", "add_groups": ["finance"], "remove_groups": []}"#,
    r#"{"description": "the finance team"}"#,
    r#"{"file_name": "a.csv", "expires_in_seconds": 600}"#,
];

const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "null",
    "true",
    "1e999",
    "-0",
    "\\u0000",
    "\\ud800",
    "\"prune\": true",
    "\"tables\": ",
    "\"kind\": \"x\"",
    "é",
    " ",
    "\n",
    "2026-13-45T99:00:00Z",
];

/// Reads `bytes` as every request type; each answer is the request or a 400 that says why.
fn read_as_every_request(bytes: &[u8]) {
    fn read<T: DeserializeOwned>(bytes: &[u8]) {
        if let Err(e) = from_json::<T>(bytes) {
            assert_eq!(e.status, 400, "{}", e.message);
            assert!(!e.message.is_empty());
        }
    }
    read::<api::ApplyRequest>(bytes);
    read::<api::StartRunRequest>(bytes);
    read::<api::BackfillRequest>(bytes);
    read::<api::DryRunRequest>(bytes);
    read::<api::PutConnectionRequest>(bytes);
    read::<api::CreateTokenRequest>(bytes);
    read::<api::UpdateUserRequest>(bytes);
    read::<api::PutGroupRequest>(bytes);
    read::<api::UploadUrlRequest>(bytes);
}

fn decode_as_every_message(body: &[u8]) {
    for result in [
        decode_push::<PlannerEvent>(body).map(|_| ()),
        decode_push::<ExecutorTask>(body).map(|_| ()),
        decode_push::<ImporterTask>(body).map(|_| ()),
    ] {
        if let Err(reason) = result {
            assert!(!reason.is_empty());
        }
    }
}

fn timed(what: &str, bytes: &[u8], read: impl FnOnce(&[u8])) {
    let started = Instant::now();
    read(bytes);
    let took = started.elapsed();
    assert!(
        took < HANG,
        "{what} took {took:?} over {} bytes",
        bytes.len()
    );
}

/// `seed` with insertions, deletions and byte changes, then repeated (at most to 1 MB).
fn mutate(seed: &str, edits: &[(usize, usize, &'static str)], times: usize) -> Vec<u8> {
    let mut bytes = seed.as_bytes().to_vec();
    for &(at, cut, insert) in edits {
        let at = at % (bytes.len() + 1);
        let end = (at + cut % 8).min(bytes.len());
        bytes.splice(at..end, insert.bytes());
    }
    if times > 1 && !bytes.is_empty() {
        let copies = times.min(MAX_INPUT / bytes.len()).max(1);
        bytes = bytes.repeat(copies);
    }
    bytes.truncate(MAX_INPUT);
    bytes
}

fn growth() -> impl Strategy<Value = usize> {
    prop_oneof![4 => Just(1usize), 2 => 2usize..50, 1 => Just(usize::MAX)]
}

fn edits() -> impl Strategy<Value = Vec<(usize, usize, &'static str)>> {
    proptest::collection::vec(
        (
            any::<usize>(),
            any::<usize>(),
            proptest::sample::select(FRAGMENTS),
        ),
        0..10,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_are_a_request_or_a_400(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        timed("a body", &bytes, read_as_every_request);
    }

    #[test]
    fn mutated_bodies_are_a_request_or_a_400(
        seed in proptest::sample::select(BODIES),
        edits in edits(),
        times in growth(),
    ) {
        let body = mutate(seed, &edits, times);
        timed("a body", &body, read_as_every_request);
    }

    #[test]
    fn any_push_is_decoded_or_refused_with_a_reason(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        timed("a push", &bytes, decode_as_every_message);
    }

    #[test]
    fn an_envelope_of_any_payload_is_decoded_or_refused(
        seed in proptest::sample::select(&[
            r#"{"event": "run_created", "run_id": "r"}"#,
            r#"{"event": "job_finished", "run_id": "r", "table": "d.t", "attempt": 1}"#,
            r#"{"event": "run_query", "run_id": "r", "table": "d.t", "attempt": 1}"#,
            r#"{"event": "consider", "table": "d.t", "force": true, "at": "2026-11-22T00:00:00Z"}"#,
            r#"{"event": "load", "table": "d.t", "batch": "b"}"#,
        ][..]),
        edits in edits(),
        times in growth(),
        envelope_edits in edits(),
    ) {
        let payload = mutate(seed, &edits, times);
        let envelope = serde_json::json!({
            "message": {
                "data": base64::engine::general_purpose::STANDARD.encode(&payload),
                "attributes": {"k": "v"},
                "messageId": "1",
            },
            "subscription": "projects/p/subscriptions/s",
        })
        .to_string();
        let body = mutate(&envelope, &envelope_edits, 1);
        timed("a push", &body, decode_as_every_message);
    }
}
