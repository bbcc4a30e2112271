//! Instants stored as native timestamps, so that the Firestore console shows them as times,
//! queries order them, and a TTL policy can read them (`alerts/{id}.expire_at`).
//!
//! The core names no store. It marks a timestamp field the way the Firestore adapter's
//! serializer (the `firestore` crate's) recognises: a newtype struct named
//! `FirestoreTimestamp` around the instant. Every other serializer sees the newtype's inner
//! value, so JSON (the API, messages) still carries an RFC 3339 string. The adapter's test
//! `instants_are_stored_as_timestamps` fails if the name ever stops being recognised.
//!
//! Use with serde: `#[serde(with = "crate::stamp::timestamp")]`, or `optional_timestamp`
//! (with `#[serde(default)]`) for an `Option`; and, for the API's schemas, `#[schemars(with =
//! "jiff::Timestamp")]` (an RFC 3339 string, as JSON carries it).

use jiff::Timestamp;

/// The newtype name the Firestore serializer reads as "store this as a timestamp value".
pub const TIMESTAMP_TAG: &str = "FirestoreTimestamp";

pub mod timestamp {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(instant: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(TIMESTAMP_TAG, instant)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        Timestamp::deserialize(deserializer)
    }
}

pub mod optional_timestamp {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        instant: &Option<Timestamp>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match instant {
            Some(instant) => serializer.serialize_newtype_struct(TIMESTAMP_TAG, instant),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        Option::<Timestamp>::deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Doc {
        #[serde(with = "crate::stamp::timestamp")]
        at: Timestamp,
        #[serde(default, with = "crate::stamp::optional_timestamp")]
        until: Option<Timestamp>,
    }

    #[test]
    fn json_sees_plain_rfc3339_strings() {
        let doc = Doc {
            at: "2026-12-01T10:00:00Z".parse().unwrap(),
            until: None,
        };
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"at": "2026-12-01T10:00:00Z", "until": null})
        );
        let back: Doc =
            serde_json::from_value(serde_json::json!({"at": "2026-12-01T10:00:00Z"})).unwrap();
        assert_eq!(back, doc);
    }
}
