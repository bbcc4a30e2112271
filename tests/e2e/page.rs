//! The operator's page in a real browser: headless Chromium (Debian's, installed by
//! `tests/stack/stack.sh install`) against the API on the local stack. A browser signed in by
//! `baton page`'s one-time link sees the runs, a failed run's graph and jobs, a table's jobs
//! with their cost, and the cost of each day; a spent link, a browser never signed in and a
//! user disabled since are refused with a page that says why. A screenshot of each page is
//! kept in `target/debug/pictures/` and its path printed; the assertions are on what Chromium
//! rendered (its DOM) and on the screenshots' colours.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use baton_core::access::Role;
use baton_core::catalog::{CatalogSpec, Frequency, Table, TableId};
use baton_core::state::RunState;
use baton_service::api::UpdateUserRequest;
use baton_tests::faults::{Fault, FaultyBigQuery};
use baton_tests::{Baton, Options, Stack, first_run_id};

const TIMEOUT: Duration = Duration::from_secs(120);

fn table(name: &str, sql: &str) -> Table {
    let id: TableId = name.parse().expect("a valid table id");
    Table {
        frequency: Some("daily".to_string()),
        ..Table::query(&id, sql)
    }
}

/// One headless Chromium profile: what it keeps (the page's cookie) lasts from one call to
/// the next, as a person's browser does.
struct Browser {
    profile: PathBuf,
    pictures: PathBuf,
}

impl Browser {
    fn new(name: &str) -> anyhow::Result<Self> {
        let profile = std::env::temp_dir().join(format!(
            "baton-page-{name}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let pictures = baton_tests::bin_dir().join("pictures");
        std::fs::create_dir_all(&pictures)?;
        Ok(Self { profile, pictures })
    }

    fn chromium(&self) -> Command {
        let mut command = Command::new("chromium");
        // As root and without a network: no sandbox, and none of the calls Chromium makes to
        // Google's hosts at start.
        command.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ]);
        command.arg(format!("--user-data-dir={}", self.profile.display()));
        command
    }

    /// The DOM Chromium made of `url`, after any redirects.
    fn dom(&self, url: &str) -> anyhow::Result<String> {
        let output = self.chromium().args(["--dump-dom", url]).output()?;
        anyhow::ensure!(output.status.success(), "chromium failed: {output:?}");
        Ok(String::from_utf8(output.stdout)?)
    }

    /// A screenshot of `url`, kept as `page-{name}.png`; its path.
    fn screenshot(&self, url: &str, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.pictures.join(format!("page-{name}.png"));
        let output = self
            .chromium()
            .arg(format!("--screenshot={}", path.display()))
            .args(["--window-size=1400,1100", url])
            .output()?;
        anyhow::ensure!(
            output.status.success() && path.exists(),
            "chromium took no screenshot: {output:?}"
        );
        println!("screenshot of {url}: {}", path.display());
        Ok(path)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// How many pixels of a screenshot are exactly `#rrggbb`.
fn pixels_of(path: &Path, rgb: u32) -> anyhow::Result<usize> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path)?));
    let mut reader = decoder.read_info()?;
    let mut buffer = vec![0; reader.output_buffer_size().unwrap_or(0)];
    let info = reader.next_frame(&mut buffer)?;
    let channels = info.color_type.samples();
    anyhow::ensure!(channels >= 3, "a screenshot in {:?}", info.color_type);
    let want = [(rgb >> 16) as u8, (rgb >> 8) as u8, rgb as u8];
    Ok(buffer[..info.buffer_size()]
        .chunks_exact(channels)
        .filter(|p| p[..3] == want)
        .count())
}

/// The text of a DOM with its tags taken out and its spaces squeezed, for reading as a
/// person reads the page.
fn text_of(dom: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom.chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_runs_graphs_tables_and_costs_to_a_signed_in_browser() -> anyhow::Result<()>
{
    let stack = Stack::load()?;
    let bigquery = FaultyBigQuery::start(stack.var("BIGQUERY_EMULATOR_HOST")?).await?;
    // BigQuery's emulator bills nothing: the proxy bills each f.billed job a TiB ($6.25).
    bigquery.rule(|id| {
        id.contains("_f_billed_")
            .then_some(Fault::Bill { bytes: 1 << 40 })
    });
    let options = Options::default().env("BIGQUERY_EMULATOR_HOST", &bigquery.url);
    let baton = Baton::start_with(&stack, "page", options).await?;
    baton
        .apply(CatalogSpec {
            frequencies: vec![Frequency::every("daily", 86_400)],
            tables: vec![
                table("f.root", "SELECT 1 AS x"),
                table("f.billed", "SELECT x FROM f.root"),
                table(
                    "f.bad",
                    "SELECT x FROM f.root CROSS JOIN (SELECT COUNT(*) AS n FROM ext.missing)",
                ),
                table("f.bad_child", "SELECT x FROM f.bad"),
            ],
        })
        .await?;
    let mut runs = Vec::new();
    for day in ["2026-11-20T12:00:00Z", "2026-11-21T12:00:00Z"] {
        let run_id = first_run_id(&baton.tick_at(day.parse()?).await?)?;
        let ended = baton.wait_for_run(&run_id, TIMEOUT).await?;
        assert_eq!(ended.run.state, RunState::Failed, "{:?}", ended.run);
        runs.push(run_id);
    }
    let api = baton.urls.api.trim_end_matches('/').to_string();

    // A browser never signed in is refused with a page that says how to sign in.
    let stranger = Browser::new("stranger")?;
    let refused = text_of(&stranger.dom(&format!("{api}/ui"))?);
    assert!(
        refused.contains("401 Unauthorized") && refused.contains("baton page"),
        "{refused}"
    );

    // `baton page --run RUN` prints a one-time link to the run's page.
    let output = baton
        .cli()
        .env("BATON_NO_BROWSER", "1")
        .args(["page", "--run", &runs[1]])
        .output()?;
    assert!(output.status.success(), "{output:?}");
    let link = String::from_utf8(output.stdout)?.trim().to_string();
    assert!(link.starts_with(&format!("{api}/ui/enter?code=")), "{link}");
    let browser = Browser::new("admin")?;
    let run_page = text_of(&browser.dom(&link)?);
    // The run, failed, its four jobs by state, and why each did not succeed.
    for expected in [
        format!("Run {} failed", runs[1]),
        "4 planned".to_string(),
        "f.bad failed 1 ".to_string(),
        "f.bad_child skipped 1".to_string(),
        "f.bad failed".to_string(),
        "f.billed succeeded 1".to_string(),
        "$6.25 (1.0 TiB billed)".to_string(),
    ] {
        assert!(
            run_page.contains(&expected),
            "no `{expected}` in {run_page}"
        );
    }
    assert!(
        run_page.contains("ext") && run_page.contains("not found"),
        "{run_page}"
    );
    // A spent link opens nothing: another browser that opens it later is told so.
    let spent = text_of(&stranger.dom(&link)?);
    assert!(
        spent.contains("410 Gone") && spent.contains("used already or has expired"),
        "{spent}"
    );

    // The same browser, by its cookie, on every page.
    let run_url = format!("{api}/ui/runs/{}", runs[1]);
    let dom = browser.dom(&run_url)?;
    assert_eq!(dom.matches("<svg").count(), 1, "the run's graph: {dom}");
    for box_of in ["f.root", "f.billed", "f.bad", "f.bad_child"] {
        assert!(dom.contains(&format!(">{box_of}<")), "no box of {box_of}");
    }
    let shot = browser.screenshot(&run_url, "run")?;
    // The graph's failed box and badges (#ffd0d0), its succeeded ones (#d4f0d4).
    assert!(
        pixels_of(&shot, 0xffd0d0)? > 500,
        "no failed box in {shot:?}"
    );
    assert!(
        pixels_of(&shot, 0xd4f0d4)? > 500,
        "no succeeded box in {shot:?}"
    );

    let runs_page = text_of(&browser.dom(&format!("{api}/ui"))?);
    assert!(
        runs_page.contains(&format!(
            "{} daily schedule failed 2 of 4, 1 failed",
            runs[0]
        )),
        "{runs_page}"
    );
    assert!(runs_page.contains(&runs[1]), "{runs_page}");
    assert!(
        runs_page.contains("admin@example.com · admin"),
        "{runs_page}"
    );
    browser.screenshot(&format!("{api}/ui"), "runs")?;

    let table_url = format!("{api}/ui/tables/f.billed");
    let table_page = text_of(&browser.dom(&table_url)?);
    assert!(
        table_page.contains("2 latest jobs, $12.50 in all"),
        "{table_page}"
    );
    let first = table_page
        .find(&runs[1])
        .expect("the latest run in the table's jobs");
    let second = table_page.find(&runs[0]).expect("the first run too");
    assert!(first < second, "the latest first: {table_page}");
    browser.screenshot(&table_url, "table")?;

    let costs_url = format!("{api}/ui/costs");
    let costs_page = text_of(&browser.dom(&costs_url)?);
    assert!(costs_page.contains(": $12.50"), "{costs_page}");
    assert!(
        costs_page.contains("f.billed $12.50 (2 jobs, 2.0 TiB)"),
        "{costs_page}"
    );
    let shot = browser.screenshot(&costs_url, "costs")?;
    assert!(
        pixels_of(&shot, 0x1f5fbf)? > 100,
        "no bar of cost in {shot:?}"
    );
    let by_group = text_of(&browser.dom(&format!("{costs_url}?by=group"))?);
    assert!(by_group.contains("(none) $12.50"), "{by_group}");
    let bad = text_of(&browser.dom(&format!("{costs_url}?by=colour"))?);
    assert!(
        bad.contains("400 Bad Request") && bad.contains("`by` is one of"),
        "{bad}"
    );

    // A reader's browser, signed in by their own link, carries their role at each request:
    // disabled since, they are refused.
    let rita = baton.client_as("rita@example.com");
    assert!(!rita.me().await?.enabled);
    baton
        .client
        .update_user(
            "rita@example.com",
            &UpdateUserRequest {
                enabled: Some(true),
                role: Some(Role::Reader),
                ..UpdateUserRequest::default()
            },
        )
        .await?;
    let rita_link = rita.page_link(Some("/ui/costs")).await?;
    let rita_browser = Browser::new("rita")?;
    let seen = text_of(&rita_browser.dom(&format!("{api}{}", rita_link.path))?);
    assert!(
        seen.contains("Costs") && seen.contains("rita@example.com · reader"),
        "{seen}"
    );
    baton
        .client
        .update_user(
            "rita@example.com",
            &UpdateUserRequest {
                enabled: Some(false),
                ..UpdateUserRequest::default()
            },
        )
        .await?;
    let refused = text_of(&rita_browser.dom(&costs_url)?);
    assert!(refused.contains("403 Forbidden"), "{refused}");

    // A link only ever sends a browser to the page.
    for elsewhere in [
        "https://elsewhere.example/ui",
        "//elsewhere.example/ui",
        "/ui/../v1/runs",
        "/ui\r\nSet-Cookie: x=y",
    ] {
        let refused = baton.client.page_link(Some(elsewhere)).await;
        assert!(
            matches!(&refused, Err(baton_cli::ClientError::Api(f)) if f.status == 400),
            "{elsewhere}: {refused:?}"
        );
    }

    // A link opened twice at once signs in one browser; the other is told it is spent.
    let link = baton.client.page_link(None).await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let url = format!("{api}{}", link.path);
    let (a, b) = tokio::join!(http.get(&url).send(), http.get(&url).send());
    let (a, b) = (a?, b?);
    let (opened, spent) = if a.status() == 303 { (a, b) } else { (b, a) };
    assert_eq!(
        (opened.status().as_u16(), spent.status().as_u16()),
        (303, 410)
    );
    // The cookie is the browser's alone, for the page alone; no page is framed, kept or
    // scripted.
    let header = |name: &str| {
        opened
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let cookie = header("set-cookie");
    for part in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/ui",
        "Max-Age=43200",
    ] {
        assert!(cookie.contains(part), "{part} not in {cookie}");
    }
    assert_eq!(header("location"), "/ui");
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(header("cache-control"), "no-store");
    Ok(())
}
