//! Messages Pub/Sub gave up on. A push subscription refused `max_delivery_attempts` times
//! moves its message to the dead-letter topic; that topic's subscription pushes it to the
//! planner's `/dead-letters`, which keeps it as a `dead_letters/{id}` document until a person
//! replays it (published again, with its attributes, to the topic it came from) or drops it.
//!
//! The dead letter says where it failed (the source subscription, from Pub/Sub's
//! `CloudPubSubDeadLetterSource*` attributes) but not why. So each service that refuses a
//! delivery records why in `push_failures/{key}`, the key a hash of the subscription and the
//! message's bytes (the dead letter has a new message id but the same bytes), and the dead
//! letter is stored with the last such record. A record is kept a week (Terraform's TTL policy
//! on `expire_at`), as long as Pub/Sub keeps an unacknowledged message.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The collection of dead letters, by the dead-lettered message's id.
pub const DEAD_LETTERS: &str = "dead_letters";
/// The collection of the last refusal of each message, by `failure_key`.
pub const PUSH_FAILURES: &str = "push_failures";
/// How long the record of a refusal is kept.
pub const KEEP_FAILURES: SignedDuration = SignedDuration::from_hours(7 * 24);

/// The attributes Pub/Sub adds to a message it dead-letters.
pub const SOURCE_SUBSCRIPTION: &str = "CloudPubSubDeadLetterSourceSubscription";
pub const SOURCE_PROJECT: &str = "CloudPubSubDeadLetterSourceSubscriptionProject";
pub const SOURCE_DELIVERY_COUNT: &str = "CloudPubSubDeadLetterSourceDeliveryCount";
pub const SOURCE_PUBLISH_TIME: &str = "CloudPubSubDeadLetterSourceTopicPublishTime";
const DEAD_LETTER_ATTRIBUTES: &str = "CloudPubSubDeadLetter";

/// Why a service refused one delivery of a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PushFailure {
    /// The subscription that delivered it (its short name).
    pub subscription: String,
    /// The service that refused it.
    pub service: String,
    /// Which delivery this was, as Pub/Sub counts them (with a dead-letter policy).
    #[serde(default)]
    pub attempt: Option<u32>,
    pub error: String,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub at: Timestamp,
    /// When Firestore's TTL policy deletes the record.
    #[serde(default, with = "crate::stamp::optional_timestamp")]
    #[schemars(skip)]
    pub expire_at: Option<Timestamp>,
}

/// A message Pub/Sub gave up delivering, kept until it is replayed or dropped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeadLetter {
    /// The dead-lettered message's id (Pub/Sub gives it a new one).
    pub id: String,
    /// The subscription that could not deliver it (its short name).
    pub subscription: String,
    /// The topic it was published to, where a replay publishes it again
    /// (`projects/P/topics/T`).
    pub topic: String,
    /// What it is about, for people: `job_finished run daily-… table shop.orders attempt 1`.
    pub about: String,
    /// The run it belongs to, if it is about one.
    #[serde(default)]
    pub run_id: Option<String>,
    /// Its bytes, base64, as published.
    pub data: String,
    /// Its bytes as text (UTF-8, lossy), for people.
    pub payload: String,
    /// Its attributes as published (Pub/Sub's dead-letter attributes left out).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// How many deliveries were tried.
    #[serde(default)]
    pub delivery_attempts: Option<u32>,
    /// When it was first published.
    #[serde(default, with = "crate::stamp::optional_timestamp")]
    #[schemars(with = "Option<jiff::Timestamp>")]
    pub published_at: Option<Timestamp>,
    /// When Baton received it as a dead letter.
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub received_at: Timestamp,
    /// The last refusal a service recorded; none when no service was reached (it was down, or
    /// refused before it could record).
    #[serde(default)]
    pub last_error: Option<PushFailure>,
}

/// A subscription's short name, from its short name or its path
/// (`projects/P/subscriptions/S`).
pub fn short_subscription(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// The key of a message's refusals: its subscription and its bytes, which the dead letter
/// keeps (its id it does not).
pub fn failure_key(subscription: &str, data: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(short_subscription(subscription).as_bytes());
    hash.update([0]);
    hash.update(data);
    hex::encode(hash.finalize())
}

/// The attributes a replay publishes: the message's own, without Pub/Sub's dead-letter ones.
pub fn original_attributes(
    attributes: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    attributes
        .into_iter()
        .filter(|(k, _)| !k.starts_with(DEAD_LETTER_ATTRIBUTES))
        .collect()
}

/// What a message is about, and its run: Baton's messages by their event and ids, Cloud
/// Storage's notifications by their object.
pub fn about(data: &[u8], attributes: &BTreeMap<String, String>) -> (String, Option<String>) {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice::<serde_json::Value>(data)
    else {
        return (format!("{} bytes, not JSON", data.len()), None);
    };
    if let (Some(bucket), Some(object)) = (attributes.get("bucketId"), attributes.get("objectId")) {
        let event = attributes
            .get("eventType")
            .map_or("storage event", String::as_str);
        return (format!("{event} gs://{bucket}/{object}"), None);
    }
    let text = |key: &str| match fields.get(key) {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    };
    let mut parts = vec![text("event").unwrap_or_else(|| "message".into())];
    for key in ["run_id", "table", "attempt", "batch", "resume"] {
        if let Some(value) = text(key) {
            parts.push(format!("{} {value}", key.trim_end_matches("_id")));
        }
    }
    (parts.join(" "), text("run_id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_and_its_dead_letter_share_a_key() {
        let data = br#"{"event":"run_query","run_id":"r","table":"d.t","attempt":1}"#;
        assert_eq!(
            failure_key("projects/p/subscriptions/baton-executor-push", data),
            failure_key("baton-executor-push", data)
        );
        assert_ne!(
            failure_key("baton-executor-push", data),
            failure_key("baton-planner-push", data)
        );
        assert_ne!(
            failure_key("baton-executor-push", data),
            failure_key("baton-executor-push", b"{}")
        );
    }

    #[test]
    fn a_message_says_what_it_is_about() {
        let none = BTreeMap::new();
        let data = br#"{"event":"run_query","run_id":"daily-1","table":"d.t","attempt":2}"#;
        assert_eq!(
            about(data, &none),
            (
                "run_query run daily-1 table d.t attempt 2".to_string(),
                Some("daily-1".to_string())
            )
        );
        let data = br#"{"event":"load","table":"d.t","batch":"b1"}"#;
        assert_eq!(about(data, &none).0, "load table d.t batch b1");
        let storage: BTreeMap<String, String> = [
            ("bucketId", "landing"),
            ("objectId", "d/t/1.csv"),
            ("eventType", "OBJECT_FINALIZE"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            about(b"{}", &storage).0,
            "OBJECT_FINALIZE gs://landing/d/t/1.csv"
        );
        assert_eq!(about(b"\xff", &none).0, "1 bytes, not JSON");
    }

    #[test]
    fn a_replay_keeps_the_messages_own_attributes() {
        let attributes = [
            ("eventType", "OBJECT_FINALIZE"),
            (SOURCE_SUBSCRIPTION, "s"),
            (SOURCE_DELIVERY_COUNT, "5"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let kept = original_attributes(attributes);
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["eventType"]);
    }
}
