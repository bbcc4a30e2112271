//! A Pub/Sub emulator of a test's own, which the test can restart: every message it held is
//! lost, as a restarted emulator loses them (and as messages Pub/Sub gave up on are lost to
//! their subscription). The stack's emulator is shared by every test and is never restarted.
//!
//! It runs in a process group of its own (the emulator's script starts a JVM), which is
//! killed as a whole; it listens on the same loopback port across restarts, so that services
//! pointed at it find it again. Its topics and subscriptions are lost with it:
//! `Baton::pubsub_restarted` makes them again.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::Stack;

pub struct OwnPubSub {
    bin: PathBuf,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl OwnPubSub {
    /// Starts one on a free loopback port and waits until it answers.
    pub async fn start(stack: &Stack) -> anyhow::Result<Self> {
        let bin = PathBuf::from(stack.var("BATON_TEST_PUBSUB_EMULATOR")?);
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = crate::bin_dir()
            .join("baton-logs")
            .join(format!("pubsub-{port}.log"));
        std::fs::create_dir_all(log.parent().expect("a folder"))?;
        let mut own = Self {
            bin,
            port,
            log,
            child: None,
        };
        own.launch().await?;
        Ok(own)
    }

    /// `PUBSUB_EMULATOR_HOST` for the services and the harness.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL to its process group) and starts it again, empty, on its port.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.launch().await
    }

    async fn launch(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let http = reqwest::Client::new();
        let url = format!("http://{}/", self.host());
        // The port may take a moment to be free again after a kill: a launch that cannot bind
        // exits, and is tried again.
        loop {
            if self.child.is_none() {
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log)?;
                let child = std::os::unix::process::CommandExt::process_group(
                    Command::new(&self.bin)
                        .arg("--host=127.0.0.1")
                        .arg(format!("--port={}", self.port))
                        .stdin(Stdio::null())
                        .stdout(log.try_clone()?)
                        .stderr(log),
                    0,
                )
                .spawn()
                .with_context(|| format!("starting {}", self.bin.display()))?;
                self.child = Some(child);
            }
            if http
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && child.try_wait()?.is_some()
            {
                self.child = None;
            }
            if Instant::now() > deadline {
                bail!(
                    "the Pub/Sub emulator did not answer on port {} within 60 s; see {}",
                    self.port,
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnPubSub {
    fn drop(&mut self) {
        self.kill();
    }
}
