//! One at a time per key, inside one process: deliveries about the same run (or job) that
//! reach one instance at once are handled in turn instead of racing.
//!
//! Correctness never depends on it: every change goes through a Firestore transaction, and
//! deliveries that reach different instances still race (the property tests prove the
//! protocol under any interleaving). It only spares the database the contention that
//! duplicated deliveries would otherwise cause, which the Firestore emulator resolves slowly
//! (a deadlock waits out a lock timeout of about two seconds before one side is aborted).

use std::hash::{BuildHasher, RandomState};

use tokio::sync::{Mutex, MutexGuard};

/// A fixed set of locks; a key takes the one its hash picks. Unrelated keys share a lock
/// rarely (one in `stripes`), which only costs them a short wait.
#[derive(Debug)]
pub struct Serial {
    hasher: RandomState,
    stripes: Box<[Mutex<()>]>,
}

impl Serial {
    pub fn new(stripes: usize) -> Self {
        Self {
            hasher: RandomState::new(),
            stripes: (0..stripes.max(1)).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Waits for the key's turn; the turn lasts as long as the guard.
    pub async fn lock(&self, key: &str) -> MutexGuard<'_, ()> {
        let index = self.hasher.hash_one(key) as usize % self.stripes.len();
        self.stripes[index].lock().await
    }
}

impl Default for Serial {
    fn default() -> Self {
        Self::new(256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_key_waits_for_its_turn_and_others_do_not() {
        let serial = Serial::new(1024);
        let held = serial.lock("run-a").await;
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), serial.lock("run-a"))
                .await
                .is_err(),
            "a second holder of one key got in"
        );
        // Another key almost surely has another stripe; find one that does.
        let other = (0..)
            .map(|i| format!("run-{i}"))
            .find(|k| {
                serial.hasher.hash_one(k.as_str()) as usize % 1024
                    != serial.hasher.hash_one("run-a") as usize % 1024
            })
            .expect("1024 stripes");
        drop(serial.lock(&other).await);
        drop(held);
        drop(serial.lock("run-a").await);
    }
}
