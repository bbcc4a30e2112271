//! A relay between the Pub/Sub emulator's push subscriptions and a service: the faults that
//! Pub/Sub may produce in production, on demand. It can deliver every message twice at once
//! (at-least-once delivery, two instances of the service racing), and it can hold chosen
//! messages back and deliver them later all at once (events that happen together, a service
//! that was slow to receive).
//!
//! It is not a fake of Pub/Sub: the messages come from the emulator and go to the real
//! service; the relay only does to them what Pub/Sub is allowed to do. A held message is
//! acknowledged to the emulator and kept by the relay until `release`.
//!
//! It also does what the emulator cannot: every delivery carries an OIDC token of the push
//! identity for the service's audience, signed by the harness's issuer, as Pub/Sub's push
//! with an `oidc_token` does. So every Baton of the harness has a relay in front of each
//! service that receives pushes, and the services verify every push.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::bail;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use base64::Engine;

use crate::oidc::{Caller, Issuer};

/// Which messages to hold, by their decoded JSON payload.
pub type Filter = Arc<dyn Fn(&serde_json::Value) -> bool + Send + Sync>;

#[derive(Default)]
struct Holding {
    filter: Option<Filter>,
    held: Vec<Bytes>,
    /// Which messages to lose: acknowledged to Pub/Sub and never delivered.
    lose: Option<Filter>,
    lost: usize,
}

struct Inner {
    /// The `/pubsub` endpoints of the service's processes: deliveries take turns among
    /// them, and the copies of a duplicated delivery go to different ones.
    targets: Vec<String>,
    turn: AtomicU64,
    issuer: Issuer,
    caller: Caller,
    http: reqwest::Client,
    duplicate: AtomicBool,
    holding: Mutex<Holding>,
    /// Deliveries received from Pub/Sub (each counted once, however often it was forwarded).
    received: AtomicU64,
    /// Deliveries the service has answered (forwarded and answered, whatever the answer).
    answered: AtomicU64,
    /// Every delivery received, in order.
    log: Mutex<Vec<Delivery>>,
}

/// One delivery Pub/Sub made to a relay: when it arrived, when its message was published
/// (Pub/Sub's `publishTime`), and its payload.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub received_at: jiff::Timestamp,
    pub published_at: Option<jiff::Timestamp>,
    pub payload: serde_json::Value,
}

/// A relay in front of one service's `/pubsub` endpoint.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
    /// Where Pub/Sub pushes to: `http://127.0.0.1:PORT/pubsub`.
    pub endpoint: String,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("endpoint", &self.endpoint)
            .field("targets", &self.inner.targets)
            .finish()
    }
}

impl Relay {
    /// Starts a relay on a loopback port for `service`, whose processes are at `urls` (base
    /// URLs), which delivers as the service's production caller with tokens from `issuer`.
    pub async fn start(
        urls: &[String],
        service: &str,
        issuer: &Issuer,
        project: &str,
    ) -> anyhow::Result<Self> {
        Self::start_to(urls, "/pubsub", service, issuer, project).await
    }

    /// A relay to the processes' endpoint at `path` (`/storage`: Cloud Storage's
    /// notifications).
    pub async fn start_to(
        urls: &[String],
        path: &str,
        service: &str,
        issuer: &Issuer,
        project: &str,
    ) -> anyhow::Result<Self> {
        if urls.is_empty() {
            bail!("{service} has no process to relay to");
        }
        let inner = Arc::new(Inner {
            targets: urls.iter().map(|u| format!("{u}{path}")).collect(),
            turn: AtomicU64::new(0),
            issuer: issuer.clone(),
            caller: crate::Baton::caller_of(project, service),
            http: reqwest::Client::new(),
            duplicate: AtomicBool::new(false),
            holding: Mutex::new(Holding::default()),
            received: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/pubsub", post(relay))
            .with_state(inner.clone());
        let endpoint = format!("{}/pubsub", crate::serve_on_loopback(app).await?);
        Ok(Self { inner, endpoint })
    }

    /// From now on, forwards every delivery twice, concurrently.
    pub fn duplicate(&self, on: bool) {
        self.inner.duplicate.store(on, Ordering::SeqCst);
    }

    /// Holds back every message from now on, until `release`.
    pub fn hold_all(&self) {
        self.hold_where(|_| true);
    }

    /// Holds back the messages whose payload `filter` accepts, until `release`.
    pub fn hold_where(&self, filter: impl Fn(&serde_json::Value) -> bool + Send + Sync + 'static) {
        self.inner.holding.lock().expect("not poisoned").filter = Some(Arc::new(filter));
    }

    /// Loses the messages whose payload `filter` accepts, from now on: each is acknowledged
    /// to Pub/Sub and never delivered, as a message that went to the dead-letter topic, or
    /// that a restarted emulator dropped, never is.
    pub fn lose_where(&self, filter: impl Fn(&serde_json::Value) -> bool + Send + Sync + 'static) {
        self.inner.holding.lock().expect("not poisoned").lose = Some(Arc::new(filter));
    }

    /// Stops losing messages.
    pub fn stop_losing(&self) {
        self.inner.holding.lock().expect("not poisoned").lose = None;
    }

    /// How many messages were lost.
    pub fn lost(&self) -> usize {
        self.inner.holding.lock().expect("not poisoned").lost
    }

    /// How many messages are held back.
    pub fn held(&self) -> usize {
        self.inner.holding.lock().expect("not poisoned").held.len()
    }

    /// Stops holding, and delivers the held messages all at once; returns when the service
    /// has answered every one.
    pub async fn release(&self) -> anyhow::Result<()> {
        let held = {
            let mut holding = self.inner.holding.lock().expect("not poisoned");
            holding.filter = None;
            std::mem::take(&mut holding.held)
        };
        // The emulator would deliver a refused message again; the relay, which acknowledged
        // it, does so in its place.
        let redeliver = |body: Bytes| async move {
            let mut status = StatusCode::OK;
            for _ in 0..20 {
                status = deliver(&self.inner, body.clone()).await;
                if status.is_success() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            status
        };
        let answers = futures::future::join_all(held.into_iter().map(redeliver)).await;
        for status in answers {
            if !status.is_success() {
                bail!("a released message was refused 20 times, lastly with {status}");
            }
        }
        Ok(())
    }

    /// How many deliveries Pub/Sub has made to this relay.
    pub fn received(&self) -> u64 {
        self.inner.received.load(Ordering::SeqCst)
    }

    /// Every delivery Pub/Sub has made to this relay, in the order they arrived.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner.log.lock().expect("not poisoned").clone()
    }

    /// How many deliveries the service has answered (held and lost ones are not).
    pub fn answered(&self) -> u64 {
        self.inner.answered.load(Ordering::SeqCst)
    }
}

/// The push's payload, decoded (`Null` if it is not a push of JSON).
fn payload(body: &[u8]) -> serde_json::Value {
    let data = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|envelope| envelope["message"]["data"].as_str().map(str::to_string))
        .and_then(|data| base64::engine::general_purpose::STANDARD.decode(data).ok());
    data.and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(serde_json::Value::Null)
}

async fn relay(State(inner): State<Arc<Inner>>, body: Bytes) -> StatusCode {
    let received_at = jiff::Timestamp::now();
    inner.received.fetch_add(1, Ordering::SeqCst);
    let published_at = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|envelope| envelope["message"]["publishTime"].as_str()?.parse().ok());
    inner.log.lock().expect("not poisoned").push(Delivery {
        received_at,
        published_at,
        payload: payload(&body),
    });
    {
        let mut holding = inner.holding.lock().expect("not poisoned");
        if holding.lose.as_ref().is_some_and(|f| f(&payload(&body))) {
            holding.lost += 1;
            return StatusCode::OK;
        }
        if holding.filter.as_ref().is_some_and(|f| f(&payload(&body))) {
            holding.held.push(body);
            return StatusCode::OK;
        }
    }
    let status = deliver(&inner, body).await;
    inner.answered.fetch_add(1, Ordering::SeqCst);
    status
}

/// Forwards the body (twice at once when duplicating); OK only when every copy was
/// acknowledged, else the status that Pub/Sub takes as "deliver again".
async fn deliver(inner: &Inner, body: Bytes) -> StatusCode {
    let copies = if inner.duplicate.load(Ordering::SeqCst) {
        2
    } else {
        1
    };
    let first = inner.turn.fetch_add(copies, Ordering::SeqCst);
    let sends = (0..copies).map(|k| {
        let target = &inner.targets[((first + k) % inner.targets.len() as u64) as usize];
        inner
            .http
            .post(target)
            .header("content-type", "application/json")
            .header("authorization", inner.issuer.bearer(&inner.caller))
            .body(body.clone())
            .send()
    });
    let mut status = StatusCode::OK;
    for answer in futures::future::join_all(sends).await {
        match answer {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => status = r.status(),
            Err(_) => status = StatusCode::BAD_GATEWAY,
        }
    }
    status
}
