//! The services' start-up and idle footprint, as `name: value unit` lines: for each service,
//! the time from starting its process to the first 200 on `/healthz` (which includes its
//! configuration, its Firestore client's connection to the local emulator, and the bind), and
//! its resident memory once idle. Run by `tests/bench/services.sh`, which builds the release
//! binaries the images hold and passes their folder.
//!
//!   bench_services BIN_DIR [--runs N]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use baton_tests::Stack;

const SERVICES: [&str; 5] = ["tick", "planner", "executor", "importer", "api"];

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Whether `/healthz` answers 200 now.
fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = [0u8; 16];
    matches!(stream.read(&mut answer), Ok(n) if answer[..n].starts_with(b"HTTP/1.1 200"))
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

struct Sample {
    ready: Duration,
    rss_kib: u64,
}

fn start_once(bin: &PathBuf, service: &str, stack: &Stack) -> anyhow::Result<Sample> {
    let port = free_port()?;
    let started = Instant::now();
    let mut child = Command::new(bin)
        .envs(stack.emulator_env()?)
        .env("BATON_PROJECT", "bench-services")
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env(
            "BATON_AUTH_AUDIENCE",
            format!("https://baton-{service}.local.test"),
        )
        .env(
            "BATON_AUTH_CALLERS",
            "baton-push@bench.iam.gserviceaccount.com",
        )
        .env(
            "BATON_ENCRYPTION_KEY",
            baton_core::secrets::Sealer::generate_key(),
        )
        // The API refuses to start without the OAuth client people sign in through.
        .env("BATON_OAUTH_CLIENT_ID", "bench.apps.googleusercontent.com")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let deadline = started + Duration::from_secs(30);
    let ready = loop {
        if healthy(port) {
            break started.elapsed();
        }
        if Instant::now() > deadline || child.try_wait()?.is_some() {
            let _ = child.kill();
            bail!("{service} did not answer /healthz");
        }
        std::thread::sleep(Duration::from_micros(500));
    };
    // Idle: nothing calls it for a second.
    std::thread::sleep(Duration::from_secs(1));
    let rss_kib = rss_kib(child.id())?;
    child.kill()?;
    child.wait()?;
    Ok(Sample { ready, rss_kib })
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let bin_dir = PathBuf::from(
        args.next()
            .context("usage: bench_services BIN_DIR [--runs N]")?,
    );
    let mut runs = 5;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().context("--runs N")?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    let stack = Stack::load()?;
    for service in SERVICES {
        let bin = bin_dir.join(format!("baton-{service}"));
        let mut samples = Vec::new();
        for _ in 0..runs {
            samples.push(start_once(&bin, service, &stack)?);
        }
        let mut ready: Vec<f64> = samples
            .iter()
            .map(|s| s.ready.as_secs_f64() * 1000.0)
            .collect();
        ready.sort_by(f64::total_cmp);
        let rss = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
        println!("ready_{service}_median: {:.1} ms", ready[ready.len() / 2]);
        println!("ready_{service}_max: {:.1} ms", ready[ready.len() - 1]);
        println!("idle_rss_{service}: {:.1} MB", rss as f64 * 1024.0 / 1e6);
    }
    Ok(())
}
