//! Logs: JSON lines on stdout with Cloud Logging's field names (`severity`, `message`, `time`),
//! filtered by `RUST_LOG` (default `info`).

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry};

/// Installs the global subscriber once; later calls do nothing.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,hyper=warn,h2=warn,tonic=warn,reqwest=warn,rustls=warn")
    });
    let _ = Registry::default()
        .with(filter)
        .with(tracing_stackdriver::layer())
        .try_init();
}
