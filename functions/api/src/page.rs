//! The operator's page: read-only HTML served by the API, for people on call who want to see
//! a run rather than read JSON. The latest runs (`/ui`), one run with its graph laid out as SVG
//! and its jobs (`/ui/runs/{run_id}`), a table's jobs in every run with their cost
//! (`/ui/tables/{table}`), and the cost of each day (`/ui/costs`). Rendered on the server (maud),
//! no script.
//!
//! The same people may read it as may read the API (`Read`), signed in the same way: a browser
//! cannot attach a bearer token, so `baton page` asks the API for a one-time link (`POST
//! /v1/page-links`, a code valid for minutes, kept only as its hash), and opening it
//! (`/ui/enter`) trades the code for a page session, once, in one transaction: a secret in an
//! `HttpOnly`, `Secure`, `SameSite=Lax` cookie scoped to `/ui`, kept as its hash for 12 hours,
//! that carries its owner's role at each request and opens nothing but the page, which only
//! reads. A request with `Authorization` is judged by it instead, as every other route.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use jiff::{SignedDuration, Timestamp};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use baton_core::access::{
    self, PAGE_LINK_MINUTES, PAGE_SESSION_HOURS, PageLink, PageSession, Principal, User, Via,
};
use baton_core::catalog::TableId;
use baton_core::costs::{CostRow, Dimension};
use baton_core::graph::{Graph, colours, short_duration};
use baton_core::ports::RunPort;
use baton_core::run::{Job, Run};
use baton_core::state::{JobState, RunState};
use baton_service::api::{PageLinkRequest, PageLinkResponse};
use baton_service::http::{ApiError, Body, path_id};
use baton_service::oidc::Refusal;

use crate::people::entry;
use crate::{App, store_error, stored_run};

/// The cookie that holds a browser's page session.
pub const COOKIE: &str = "baton_page";
/// The largest run whose graph the page lays out (a larger one's is left to `baton graph
/// --run RUN --around`): layout grows faster than the square of the size.
pub const GRAPH_UP_TO: usize = 300;
/// How many jobs of a table the page shows.
const TABLE_JOBS: u32 = 100;
/// The most days the costs page covers.
const MAX_DAYS: u32 = 366;

/// Whether a request is for the page (its errors are pages too).
pub fn is_page(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

/// The page session's secret in a request's cookies.
pub fn session_secret(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
}

impl App {
    /// Who a page session's secret proves the caller is: its owner, as they are now.
    pub(crate) async fn page_principal(&self, secret: &str) -> Result<Principal, ApiError> {
        let unauthenticated = |m: &str| ApiError::from(Refusal::Unauthenticated(m.to_string()));
        let session = self
            .store
            .page_session(&access::token_hash(secret))
            .await
            .map_err(store_error)?
            .filter(|s| s.expire_at > Timestamp::now())
            .ok_or_else(|| {
                unauthenticated(
                    "this browser's sign-in to the page has expired or is unknown: open the \
                     page again with `baton page`",
                )
            })?;
        let user: User = self
            .store
            .get(None, access::USERS, &session.owner)
            .await
            .map_err(store_error)?
            .ok_or_else(|| unauthenticated("the page's user is gone"))?;
        Ok(Principal::of(&user, Via::Page))
    }
}

/// `POST /v1/page-links`: a one-time link that signs a browser in to the page, for the
/// caller; `baton page` opens it.
pub async fn create_link(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Body(request): Body<PageLinkRequest>,
) -> Result<(StatusCode, Json<PageLinkResponse>), ApiError> {
    let to = request.to.unwrap_or_else(|| "/ui".to_string());
    // A path of the page, as a browser is sent to it: nothing that leaves `/ui` or would
    // not fit in a `Location` header.
    let fits = to.chars().all(|c| c.is_ascii_graphic()) && !to.contains("..");
    if !is_page(&to) || !fits || to.contains("//") || to.contains('\\') {
        return Err(ApiError::bad_request(format!(
            "`to` is a path of the page, under /ui, not `{to}`"
        )));
    }
    let expire_at = Timestamp::now() + SignedDuration::from_mins(PAGE_LINK_MINUTES);
    if principal.via == Via::Unauthenticated {
        // Authentication is off (`BATON_AUTH_DISABLED`): the page opens to anyone.
        return Ok((
            StatusCode::CREATED,
            Json(PageLinkResponse {
                path: to,
                expires_at: expire_at,
            }),
        ));
    }
    let code = access::page_secret(&rand::random());
    let link = PageLink {
        schema_version: access::SCHEMA_VERSION,
        owner: principal.email.clone(),
        to,
        expire_at,
    };
    app.store
        .page_link(&access::token_hash(&code), &link)
        .await
        .map_err(store_error)?;
    Ok((
        StatusCode::CREATED,
        Json(PageLinkResponse {
            path: format!("/ui/enter?code={code}"),
            expires_at: expire_at,
        }),
    ))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnterQuery {
    /// The one-time code of a page link.
    code: String,
}

/// `GET /ui/enter?code=…`: opens a page link, once, and sends the browser on to its page with
/// a page session in a cookie.
pub async fn enter(
    State(app): State<Arc<App>>,
    Query(query): Query<EnterQuery>,
) -> Result<Response, ApiError> {
    let secret = access::page_secret(&rand::random());
    let now = Timestamp::now();
    let session_of = |link: &PageLink| PageSession {
        schema_version: access::SCHEMA_VERSION,
        owner: link.owner.clone(),
        created_at: now,
        expire_at: now + SignedDuration::from_hours(PAGE_SESSION_HOURS),
    };
    let audit_of = |link: &PageLink| {
        // An entry records who and how; the role here is not read (it is at each request).
        let who = Principal {
            email: link.owner.clone(),
            role: access::Role::Reader,
            enabled: true,
            groups: Default::default(),
            via: Via::Page,
        };
        entry(
            &who,
            "page.sign_in",
            &link.owner,
            None,
            None,
            serde_json::json!({ "to": link.to }),
        )
    };
    let opened = app
        .store
        .open_page_link(
            &access::token_hash(&query.code),
            &access::token_hash(&secret),
            now,
            session_of,
            audit_of,
        )
        .await
        .map_err(store_error)?;
    let Some((link, _)) = opened else {
        return Err(ApiError::new(
            StatusCode::GONE,
            "gone",
            "this page link was used already or has expired: ask for another with `baton page`",
        ));
    };
    tracing::info!(user = %link.owner, "signed in to the page");
    let cookie = cookie::Cookie::build((COOKIE, secret))
        .path("/ui")
        .http_only(true)
        .secure(true)
        .same_site(cookie::SameSite::Lax)
        .max_age(cookie::time::Duration::hours(PAGE_SESSION_HOURS))
        .build();
    let mut response = Redirect::to(&link.to).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie.to_string())
            .map_err(|e| ApiError::internal(e.to_string()))?,
    );
    Ok(response)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    /// How many of the latest runs (50 unless told, at most 500).
    limit: Option<u32>,
}

/// `GET /ui`: the latest runs.
pub async fn runs(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Query(query): Query<RunsQuery>,
) -> Result<Html<String>, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let runs = app.store.recent_runs(limit).await.map_err(store_error)?;
    let now = Timestamp::now();
    let body = html! {
        h1 { "Runs" }
        @if runs.is_empty() {
            p.quiet { "No runs yet." }
        } @else {
            table {
                thead { tr {
                    th { "run" } th { "of" } th { "trigger" } th { "state" } th.n { "jobs" }
                    th { "created" } th.n { "took" }
                } }
                tbody {
                    @for run in &runs {
                        tr {
                            td { a href={ "/ui/runs/" (run.id) } { (run.id) } }
                            td { (run_of(run)) }
                            td { (trigger(run)) }
                            td { (run_badge(run.state)) }
                            td.n { (jobs_line(run)) }
                            td { (moment(run.created_at)) }
                            td.n { (short_duration(run.finished_at.unwrap_or(now).duration_since(run.created_at))) }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Runs", &principal, body))
}

/// `GET /ui/runs/{run_id}`: a run, its graph coloured by state, and its jobs.
pub async fn run(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Path(run_id): Path<String>,
) -> Result<Html<String>, ApiError> {
    path_id("run", &run_id)?;
    let (run, jobs) = futures::try_join!(stored_run(&app, &run_id), async {
        RunPort::jobs(&app.store, &run_id)
            .await
            .map_err(store_error)
    })?;
    let mut jobs = jobs;
    jobs.sort_by(|a, b| a.table.cmp(&b.table));
    let now = Timestamp::now();
    let graph = if jobs.is_empty() {
        None
    } else if jobs.len() <= GRAPH_UP_TO {
        let of = jobs.clone();
        let svg = tokio::task::spawn_blocking(move || Graph::of_run(&of, now).svg())
            .await
            .map_err(|e| ApiError::internal(format!("the graph could not be drawn: {e}")))?;
        Some(Ok(svg))
    } else {
        Some(Err(jobs.len()))
    };
    let cost: f64 = jobs.iter().map(job_cost).sum();
    let billed: i64 = jobs.iter().map(job_billed).sum();
    let mut counts: Vec<(JobState, usize)> = Vec::new();
    for job in &jobs {
        match counts.iter_mut().find(|(s, _)| *s == job.state) {
            Some((_, n)) => *n += 1,
            None => counts.push((job.state, 1)),
        }
    }
    counts.sort_by_key(|(s, _)| s.as_str());
    let body = html! {
        h1 { "Run " span.id { (run.id) } " " (run_badge(run.state)) }
        dl {
            dt { "of" } dd { (run_of(&run)) }
            dt { "trigger" } dd { (trigger(&run)) @if let Some(who) = &run.requested_by { " by " (who) } }
            dt { "for" } dd { (moment(run.instant)) }
            dt { "created" } dd { (moment(run.created_at)) }
            @if let Some(finished) = run.finished_at {
                dt { "finished" } dd { (moment(finished)) " (took " (short_duration(finished.duration_since(run.created_at))) ")" }
            } @else {
                dt { "running for" } dd { (short_duration(now.duration_since(run.created_at))) }
            }
            dt { "jobs" } dd {
                (run.job_count) " planned"
                @for (state, n) in &counts { ", " (n) " " (state.as_str()) }
            }
            dt { "cost" } dd { (dollars(cost)) " (" (bytes(billed)) " billed)" }
            @if run.resumes > 0 { dt { "resumed" } dd { (run.resumes) " times" } }
            @if let Some(error) = &run.error { dt { "error" } dd.error { (error) } }
        }
        @match graph {
            Some(Ok(svg)) => { div.graph { (PreEscaped(strip_xml_declaration(&svg))) } }
            Some(Err(n)) => {
                p.quiet { "The graph of a run of " (n) " jobs is not drawn here (at most "
                    (GRAPH_UP_TO) "): `baton graph --run " (run.id) " --around DATASET.TABLE`." }
            }
            None => {}
        }
        @if jobs.is_empty() {
            p.quiet { "No jobs yet: the plan is not frozen." }
        } @else {
            table {
                thead { tr {
                    th { "table" } th { "state" } th.n { "attempt" } th { "started" }
                    th.n { "took" } th.n { "billed" } th.n { "cost" } th { "why" }
                } }
                tbody {
                    @for job in &jobs {
                        tr {
                            td { a href={ "/ui/tables/" (job.table) } { (job.table) } }
                            td { (job_badge(job.state)) }
                            td.n { (job.attempt) }
                            td { @if let Some(t) = job.started_at { (moment(t)) } }
                            td.n { (job_took(job, now)) }
                            td.n { (bytes(job_billed(job))) }
                            td.n { (dollars(job_cost(job))) }
                            td.why { (job_why(job)) }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&format!("Run {}", run.id), &principal, body))
}

/// `GET /ui/tables/{table}`: a table's jobs in every run, the latest first, with their cost.
pub async fn table(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Path(table): Path<String>,
) -> Result<Html<String>, ApiError> {
    path_id("table", &table)?;
    let id: TableId = table
        .parse()
        .map_err(|e: baton_core::catalog::InvalidName| ApiError::bad_request(e.0))?;
    let jobs = app
        .store
        .table_jobs(&id, TABLE_JOBS)
        .await
        .map_err(store_error)?;
    let now = Timestamp::now();
    let cost: f64 = jobs.iter().map(job_cost).sum();
    let succeeded: Vec<SignedDuration> = jobs
        .iter()
        .filter(|j| j.state == JobState::Succeeded)
        .filter_map(|j| Some(j.finished_at?.duration_since(j.started_at?)))
        .collect();
    let body = html! {
        h1 { "Table " span.id { (id) } }
        @if jobs.is_empty() {
            p.quiet { "No job of " (id) " yet." }
        } @else {
            p {
                (jobs.len()) " latest jobs, " (dollars(cost)) " in all"
                @if let Some(median) = median(&succeeded) {
                    "; a successful one takes " (short_duration(median)) " (median)"
                }
                "."
            }
            table {
                thead { tr {
                    th { "run" } th { "for" } th { "state" } th.n { "attempt" }
                    th.n { "took" } th.n { "billed" } th.n { "cost" } th { "why" }
                } }
                tbody {
                    @for job in &jobs {
                        tr {
                            td { a href={ "/ui/runs/" (job.run_id) } { (job.run_id) } }
                            td { (moment(job.run_time)) }
                            td { (job_badge(job.state)) }
                            td.n { (job.attempt) }
                            td.n { (job_took(job, now)) }
                            td.n { (bytes(job_billed(job))) }
                            td.n { (dollars(job_cost(job))) }
                            td.why { (job_why(job)) }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&format!("Table {id}"), &principal, body))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CostsQuery {
    /// table, user, group or frequency (table unless told).
    by: Option<String>,
    /// How many days up to today (UTC), 30 unless told.
    days: Option<u32>,
}

/// `GET /ui/costs`: what each day cost, and what it cost by a dimension.
pub async fn costs(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Query(query): Query<CostsQuery>,
) -> Result<Html<String>, ApiError> {
    let by = crate::dimension(query.by.as_deref())?;
    let days = query.days.unwrap_or(30).clamp(1, MAX_DAYS);
    let to = Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let from = to
        .checked_sub(jiff::Span::new().days(i64::from(days) - 1))
        .unwrap_or(to);
    let rows = app
        .store
        .costs(by, &from.to_string(), &to.to_string())
        .await
        .map_err(store_error)?;
    let mut by_day: Vec<(&str, f64, Vec<&CostRow>)> = Vec::new();
    for row in &rows {
        match by_day.iter_mut().find(|(d, _, _)| *d == row.day) {
            Some((_, total, of)) => {
                *total += row.cost;
                of.push(row);
            }
            None => by_day.push((&row.day, row.cost, vec![row])),
        }
    }
    by_day.sort_by(|a, b| b.0.cmp(a.0));
    let most = by_day.iter().map(|d| d.1).fold(0.0_f64, f64::max);
    let total: f64 = by_day.iter().map(|d| d.1).sum();
    let body = html! {
        h1 { "Costs" }
        p.choices {
            "By "
            @for d in Dimension::ALL {
                @if d == by { strong { (d.name()) } } @else {
                    a href={ "/ui/costs?by=" (d.name()) "&days=" (days) } { (d.name()) }
                }
                " "
            }
            "· the last " (days) " days (UTC), " (from) " to " (to) ": " strong { (dollars(total)) }
        }
        @if by_day.is_empty() {
            p.quiet { "No job has cost anything in these days." }
        } @else {
            table.costs {
                thead { tr { th { "day" } th.n { "cost" } th { "" } th { (by.name()) } } }
                tbody {
                    @for (day, cost, of) in &by_day {
                        tr {
                            td { (day) }
                            td.n { (dollars(*cost)) }
                            td.bar { div.bar style={ "width:" (bar_width(*cost, most)) "%" } {} }
                            td {
                                @for row in of.iter().take(5) {
                                    span.part {
                                        @if by == Dimension::Table {
                                            a href={ "/ui/tables/" (row.value) } { (row.value) }
                                        } @else { (row.value) }
                                        " " (dollars(row.cost)) " (" (row.jobs) " jobs, " (bytes(row.bytes_billed)) ")"
                                    }
                                }
                                @if of.len() > 5 { span.quiet { "and " (of.len() - 5) " more" } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Costs", &principal, body))
}

/// What every answer of the page says to the browser: nothing of it is kept or shown in
/// another site's frame, and it runs no script and loads nothing (its styles and its SVG are
/// inline).
const PAGE_HEADERS: [(header::HeaderName, &str); 4] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    (header::CACHE_CONTROL, "no-store"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
];

/// The page's answers: its headers on each, and its errors as pages, since a person is
/// looking.
pub async fn page_responses(request: Request, next: Next) -> Response {
    if !is_page(request.uri().path()) {
        return next.run(request).await;
    }
    let mut response = html_error(next.run(request).await).await;
    for (name, value) in PAGE_HEADERS {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}

/// An error answer as a page (other answers as they are).
async fn html_error(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
    let title = status.canonical_reason().unwrap_or("Error");
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (title) " · Baton" } style { (PreEscaped(STYLE)) } }
            body {
                header { a.home href="/ui" { "Baton" } }
                main {
                    h1 { (status.as_u16()) " " (title) }
                    p.error { (message) }
                    @if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::GONE) {
                        p { "Run " code { "baton page" } " in a terminal where " code { "baton" }
                            " is signed in: it opens this page and signs this browser in." }
                    }
                }
            }
        }
    };
    let mut answer = (status, Html(markup.into_string())).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

/// A whole page: its title, who is looking, the links between pages, `body`.
fn page(title: &str, principal: &Principal, body: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Baton" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a.home href="/ui" { "Baton" }
                    nav { a href="/ui" { "Runs" } a href="/ui/costs" { "Costs" } }
                    span.who { (principal.email) " · " (principal.role) }
                }
                main { (body) }
            }
        }
    };
    Html(markup.into_string())
}

const STYLE: &str = "
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { display: flex; gap: 1.5em; align-items: baseline; padding: .6em 1.5em; background: #263238; color: #eceff1; }
header a { color: #eceff1; text-decoration: none; }
header .home { font-weight: 700; font-size: 1.15em; }
header nav a { margin-right: 1em; }
header .who { margin-left: auto; opacity: .8; }
main { padding: 1em 1.5em 3em; }
h1 { font-size: 1.4em; margin: .3em 0 .6em; }
.id { font-family: ui-monospace, monospace; font-weight: 500; }
table { border-collapse: collapse; background: #fff; box-shadow: 0 0 0 1px #e0e0e0; }
th, td { padding: .3em .8em; text-align: left; border-bottom: 1px solid #eee; vertical-align: top; }
th { background: #f1f3f4; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.why { max-width: 40em; color: #8a1c1c; }
a { color: #1f5fbf; }
.badge { display: inline-block; padding: 0 .5em; border-radius: .6em; border: 1px solid; font-size: .9em; }
dl { display: grid; grid-template-columns: max-content auto; gap: .15em 1em; }
dt { color: #666; }
dd { margin: 0; }
.error { color: #8a1c1c; }
.quiet { color: #777; }
.graph { overflow: auto; background: #fff; box-shadow: 0 0 0 1px #e0e0e0; margin: 1em 0; padding: .5em; }
td.bar { width: 16em; }
div.bar { height: .9em; background: #1f5fbf; border-radius: 2px; min-width: 1px; }
.part { display: block; }
.choices a, .choices strong { margin-right: .3em; }
";

/// A state's badge, in the graph's colours.
fn badge(text: &str, (fill, line): (&str, &str)) -> Markup {
    html! { span.badge.(text) style={ "background:" (fill) ";border-color:" (line) ";color:" (line) } { (text) } }
}

fn job_badge(state: JobState) -> Markup {
    badge(state.as_str(), colours(state))
}

/// A run's state in the colours of the job state it resembles.
fn run_badge(state: RunState) -> Markup {
    let like = match state {
        RunState::Created | RunState::Planning => JobState::Queued,
        RunState::Running => JobState::Running,
        RunState::Succeeded => JobState::Succeeded,
        RunState::Failed => JobState::Failed,
        RunState::Cancelled => JobState::Cancelled,
        RunState::Skipped => JobState::Skipped,
    };
    badge(state.as_str(), colours(like))
}

/// What a run runs: its frequency, or its chosen tables.
fn run_of(run: &Run) -> String {
    match &run.frequency {
        Some(f) => f.clone(),
        None => {
            let mut text = String::new();
            for (i, t) in run.tables.iter().enumerate() {
                if i == 3 {
                    let _ = write!(text, " and {} more", run.tables.len() - 3);
                    break;
                }
                let _ = write!(text, "{}{t}", if i == 0 { "" } else { ", " });
            }
            if run.downstream {
                text.push_str(" and downstream");
            }
            text
        }
    }
}

fn trigger(run: &Run) -> String {
    serde_json::to_value(run.trigger)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A run's jobs: ended out of planned, once it has ended or been planned.
fn jobs_line(run: &Run) -> String {
    match &run.summary {
        Some(s) if s.failed > 0 => {
            format!("{} of {}, {} failed", s.succeeded, run.job_count, s.failed)
        }
        Some(s) => format!("{} of {}", s.succeeded, run.job_count),
        None => run.job_count.to_string(),
    }
}

fn job_took(job: &Job, now: Timestamp) -> String {
    job.started_at
        .map(|s| short_duration(job.finished_at.unwrap_or(now).duration_since(s)))
        .unwrap_or_default()
}

fn job_why(job: &Job) -> String {
    match (&job.error, &job.skipped_because) {
        (Some(error), _) => error.clone(),
        (None, Some(parent)) => format!("{parent} failed"),
        _ => String::new(),
    }
}

fn job_cost(job: &Job) -> f64 {
    job.statistics.as_ref().map_or(0.0, |s| s.cost)
}

fn job_billed(job: &Job) -> i64 {
    job.statistics.as_ref().map_or(0, |s| s.bytes_billed)
}

fn median(durations: &[SignedDuration]) -> Option<SignedDuration> {
    let mut sorted = durations.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied()
}

/// A moment in UTC, to the second.
fn moment(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn dollars(cost: f64) -> String {
    if cost > 0.0 && cost < 0.01 {
        format!("${cost:.4}")
    } else {
        format!("${cost:.2}")
    }
}

fn bytes(n: i64) -> String {
    bytesize::ByteSize::b(n.max(0) as u64)
        .display()
        .iec()
        .to_string()
}

fn bar_width(cost: f64, most: f64) -> String {
    if most <= 0.0 {
        return "0".into();
    }
    format!("{:.1}", cost / most * 100.0)
}

/// layout-rs writes a whole SVG file; inside HTML only its `<svg>` element belongs.
fn strip_xml_declaration(svg: &str) -> &str {
    svg.find("<svg").map_or(svg, |at| &svg[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_session_is_read_from_the_cookies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; baton_page=abc_DEF-1; other=x"),
        );
        assert_eq!(session_secret(&headers).as_deref(), Some("abc_DEF-1"));
        headers.insert(header::COOKIE, HeaderValue::from_static("baton_pages=no"));
        assert_eq!(session_secret(&headers), None);
    }

    #[test]
    fn page_paths_and_amounts_read_as_people_expect() {
        assert!(
            is_page("/ui") && is_page("/ui/runs/x") && !is_page("/uix") && !is_page("/v1/runs")
        );
        assert_eq!(dollars(0.0), "$0.00");
        assert_eq!(dollars(0.00123), "$0.0012");
        assert_eq!(dollars(12.345), "$12.35");
        assert_eq!(bytes(10 * 1024 * 1024), "10.0 MiB");
        assert_eq!(bar_width(1.0, 4.0), "25.0");
        assert_eq!(
            strip_xml_declaration("<?xml version=\"1.0\"?><svg a>"),
            "<svg a>"
        );
    }
}
