//! Run history in the console: the filterable list, one run with its attempts, replays (one
//! run, or every run the filters match) and the dead letters.
//!
//! Filters come from the query string and are parsed leniently: a value that makes no sense
//! is reported next to its field and ignored, so odd links never fail the page. A bulk replay
//! is the exception: there an ignored filter would widen the set, so any error refuses it.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use syncline_store::{Pair, PairId, Run, RunFilter, RunId, RunStatus, StoreError};

use super::{Chrome, CsrfForm, PageResult, page_err};
use crate::api::runs::{MAX_REPLAY, replay_matching as replay_filtered, replay_one, replayable};
use crate::auth::{Actor, ConsoleActor, Permission};
use crate::connections::FLOWS;
use crate::error::FieldError;
use crate::{AppError, AppState};

/// Runs per page.
const PAGE_SIZE: u32 = 50;
/// Characters of an error shown in the list; the rest is in the row's tooltip and the detail.
const ERROR_PREVIEW: usize = 80;
/// Longest order number accepted in a search box.
const MAX_REF: usize = 200;
/// How times are shown: always UTC, so operators in different places read the same value.
const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S UTC";

/// The filters as submitted, echoed back into the form and carried by links and replays.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub(crate) struct Filters {
    #[serde(default)]
    pair: String,
    #[serde(default)]
    flow: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    shopify_order: String,
    #[serde(default)]
    d365_order: String,
}

impl Filters {
    fn pairs(&self) -> [(&'static str, &str); 7] {
        [
            ("pair", &self.pair),
            ("flow", &self.flow),
            ("status", &self.status),
            ("from", &self.from),
            ("to", &self.to),
            ("shopify_order", &self.shopify_order),
            ("d365_order", &self.d365_order),
        ]
    }

    fn is_empty(&self) -> bool {
        self.pairs()
            .iter()
            .all(|(_, value)| value.trim().is_empty())
    }

    /// The filter for the store, and a message for each field that was ignored.
    fn parse(&self) -> (RunFilter, Vec<FieldError>) {
        let mut errors = Vec::new();
        let mut error = |field: &str, message: String| {
            errors.push(FieldError {
                field: field.to_owned(),
                message,
            });
        };
        let pair_id = given(&self.pair).and_then(|text| match text.parse::<PairId>() {
            Ok(id) => Some(id),
            Err(_) => {
                error("pair", "Choose a pair from the list.".into());
                None
            }
        });
        let flow = given(&self.flow).and_then(|text| {
            if FLOWS.iter().any(|(name, _)| *name == text) {
                Some(text.to_owned())
            } else {
                error("flow", "Choose a flow from the list.".into());
                None
            }
        });
        let status = given(&self.status).and_then(|text| {
            let status = RunStatus::parse(text);
            if status.is_none() {
                error("status", "Choose a status from the list.".into());
            }
            status
        });
        let since = given(&self.from).and_then(|text| {
            let at = parse_time(text, false);
            if at.is_none() {
                error("from", time_hint("From"));
            }
            at
        });
        let mut until = given(&self.to).and_then(|text| {
            let at = parse_time(text, true);
            if at.is_none() {
                error("to", time_hint("To"));
            }
            at
        });
        if let (Some(since), Some(to)) = (since, until)
            && since >= to
        {
            error("to", "“To” must be later than “From”.".into());
            until = None;
        }
        let mut reference = |field: &str, value: &str| {
            given(value).and_then(|text| {
                if text.chars().count() > MAX_REF {
                    error(field, format!("At most {MAX_REF} characters."));
                    None
                } else {
                    Some(text.to_owned())
                }
            })
        };
        let shopify_ref = reference("shopify_order", &self.shopify_order);
        let d365_ref = reference("d365_order", &self.d365_order);
        (
            RunFilter {
                pair_id,
                flow,
                status,
                since,
                until,
                shopify_ref,
                d365_ref,
            },
            errors,
        )
    }

    /// A query string of the filters plus `extra`, without empty values.
    fn query(&self, extra: &[(&str, &str)]) -> String {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in self.pairs().into_iter().chain(extra.iter().copied()) {
            if !value.trim().is_empty() {
                serializer.append_pair(key, value.trim());
            }
        }
        serializer.finish()
    }
}

/// A submitted value, unless blank (a blank field means "any").
fn given(value: &str) -> Option<&str> {
    Some(value.trim()).filter(|v| !v.is_empty())
}

fn time_hint(field: &str) -> String {
    format!("“{field}” must be a date (2026-01-31) or a UTC time (2026-01-31T09:00).")
}

/// Reads an RFC 3339 time, a `datetime-local` value (taken as UTC) or a date. A date as the
/// end of a range means the whole day, so it becomes the next midnight.
fn parse_time(text: &str, end_of_range: bool) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Some(at.and_utc());
        }
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let midnight = day.and_hms_opt(0, 0, 0)?.and_utc();
    Some(if end_of_range {
        midnight + Duration::days(1)
    } else {
        midnight
    })
}

/// The query string's values, first one per key; never fails, so no query string can.
fn query_values(raw: Option<&str>) -> Vec<(String, String)> {
    let mut values: Vec<(String, String)> = Vec::new();
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if !values.iter().any(|(k, _)| *k == key) {
            values.push((key.into_owned(), value.into_owned()));
        }
    }
    values
}

fn value_of(values: &[(String, String)], key: &str) -> String {
    values
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn filters_from(values: &[(String, String)]) -> Filters {
    Filters {
        pair: value_of(values, "pair"),
        flow: value_of(values, "flow"),
        status: value_of(values, "status"),
        from: value_of(values, "from"),
        to: value_of(values, "to"),
        shopify_order: value_of(values, "shopify_order"),
        d365_order: value_of(values, "d365_order"),
    }
}

/// A run as a row of the list.
pub(crate) struct RunRow {
    pub id: String,
    pub time: String,
    pub pair: String,
    pub flow: String,
    pub shopify: String,
    pub status: &'static str,
    pub d365: String,
    pub attempts: i64,
    pub error: String,
    pub error_preview: String,
    pub error_class: String,
    pub replayable: bool,
}

fn pair_name(pairs: &[Pair], id: PairId) -> String {
    pairs
        .iter()
        .find(|p| p.id == id)
        .map(|p| p.name.clone())
        .unwrap_or_else(|| id.to_string())
}

fn row(run: &Run, pairs: &[Pair]) -> RunRow {
    let error = run.error.clone().unwrap_or_default();
    let error_preview = if error.chars().count() > ERROR_PREVIEW {
        format!("{}…", error.chars().take(ERROR_PREVIEW).collect::<String>())
    } else {
        error.clone()
    };
    RunRow {
        id: run.id.to_string(),
        time: run.created_at.format(TIME_FORMAT).to_string(),
        pair: pair_name(pairs, run.pair_id),
        flow: run.flow.clone(),
        shopify: run.shopify_ref.clone().unwrap_or_default(),
        status: run.status.as_str(),
        d365: run.d365_ref.clone().unwrap_or_default(),
        attempts: run.attempts,
        error,
        error_preview,
        error_class: run.error_class.clone().unwrap_or_default(),
        replayable: replayable(run.status),
    }
}

/// A pair in the filter's select box.
pub(crate) struct PairChoice {
    pub id: String,
    pub name: String,
}

/// Which list a page shows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum View {
    All,
    DeadLetters,
}

impl View {
    fn path(self) -> &'static str {
        match self {
            View::All => "/console/runs",
            View::DeadLetters => "/console/dead-letters",
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "runs.html")]
struct RunsPage {
    chrome: Chrome,
    dead_letters: bool,
    action: &'static str,
    filters: Filters,
    pairs: Vec<PairChoice>,
    flows: Vec<&'static str>,
    statuses: Vec<&'static str>,
    rows: Vec<RunRow>,
    errors: Vec<FieldError>,
    notice: String,
    newer: String,
    older: String,
    first_page: String,
    filtered: bool,
    /// How many runs a bulk replay would requeue; shown only for failed or dead runs.
    replay_count: Option<i64>,
    replay_cap: u32,
}

impl RunsPage {
    fn error_for(&self, field: &str) -> String {
        self.errors
            .iter()
            .filter(|e| e.field == field)
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What a list page is asked for.
struct ListRequest {
    filters: Filters,
    cursor: String,
    before: String,
    notice: String,
}

async fn list_view(
    state: &AppState,
    actor: &Actor,
    view: View,
    request: ListRequest,
    mut errors: Vec<FieldError>,
    status: StatusCode,
) -> PageResult {
    let context = actor.require(Permission::View).map_err(page_err)?;
    let tenant = context.tenant.id;
    let mut filters = request.filters;
    if view == View::DeadLetters {
        filters.status = RunStatus::Dead.as_str().to_owned();
    }
    let (filter, parse_errors) = filters.parse();
    errors.extend(parse_errors);
    let store = &state.store;
    let page = match (given(&request.before), given(&request.cursor)) {
        (Some(before), _) => {
            store
                .list_newer_runs(tenant, &filter, before, PAGE_SIZE)
                .await
        }
        (None, cursor) => store.list_runs(tenant, &filter, cursor, PAGE_SIZE).await,
    };
    let page = match page {
        Ok(page) => page,
        // A cursor we did not make (edited or truncated link): show the newest page instead.
        Err(StoreError::Corrupt {
            what: "run cursor", ..
        }) => {
            errors.push(FieldError {
                field: "cursor".into(),
                message: "That page link is not valid any more; showing the newest runs.".into(),
            });
            store
                .list_runs(tenant, &filter, None, PAGE_SIZE)
                .await
                .map_err(|e| page_err(e.into()))?
        }
        Err(other) => return Err(page_err(other.into())),
    };
    let pairs = store
        .list_pairs(tenant)
        .await
        .map_err(|e| page_err(e.into()))?;
    let chrome = Chrome::for_actor(state, actor).await.map_err(page_err)?;
    let replay_count = match filter.status {
        Some(RunStatus::Failed | RunStatus::Dead) if chrome.can_operate => Some(
            store
                .count_runs(tenant, &filter)
                .await
                .map_err(|e| page_err(e.into()))?,
        ),
        _ => None,
    };
    let link = |key: &str, cursor: &Option<String>| {
        cursor
            .as_deref()
            .map(|c| format!("{}?{}", view.path(), filters.query(&[(key, c)])))
            .unwrap_or_default()
    };
    let older = link("cursor", &page.next_cursor);
    let newer = link("before", &page.prev_cursor);
    let paged = given(&request.cursor).is_some() || given(&request.before).is_some();
    let first_page = if paged {
        let query = filters.query(&[]);
        if query.is_empty() {
            view.path().to_owned()
        } else {
            format!("{}?{query}", view.path())
        }
    } else {
        String::new()
    };
    let filtered = match view {
        View::All => !filters.is_empty(),
        View::DeadLetters => !Filters {
            status: String::new(),
            ..filters.clone()
        }
        .is_empty(),
    };
    let page = RunsPage {
        chrome,
        dead_letters: view == View::DeadLetters,
        action: view.path(),
        rows: page.runs.iter().map(|run| row(run, &pairs)).collect(),
        pairs: pairs
            .iter()
            .map(|p| PairChoice {
                id: p.id.to_string(),
                name: p.name.clone(),
            })
            .collect(),
        flows: FLOWS.iter().map(|(name, _)| *name).collect(),
        statuses: [
            RunStatus::Queued,
            RunStatus::Running,
            RunStatus::Retrying,
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Dead,
        ]
        .iter()
        .map(|s| s.as_str())
        .collect(),
        filters,
        errors,
        notice: request.notice,
        newer,
        older,
        first_page,
        filtered,
        replay_count,
        replay_cap: MAX_REPLAY,
    };
    Ok((status, page).into_response())
}

fn replayed_notice(values: &[(String, String)]) -> String {
    match value_of(values, "replayed").parse::<u64>() {
        Ok(1) => "1 run was put back in the queue.".to_owned(),
        Ok(n) => format!("{n} runs were put back in the queue."),
        Err(_) => String::new(),
    }
}

fn list_request(raw: Option<&str>) -> ListRequest {
    let values = query_values(raw);
    ListRequest {
        filters: filters_from(&values),
        cursor: value_of(&values, "cursor"),
        before: value_of(&values, "before"),
        notice: replayed_notice(&values),
    }
}

/// `GET /console/runs`: the tenant's runs, newest first, filtered and paged.
pub(crate) async fn runs_page(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let request = list_request(raw.as_deref());
    list_view(
        &state,
        &actor,
        View::All,
        request,
        Vec::new(),
        StatusCode::OK,
    )
    .await
}

/// `GET /console/dead-letters`: runs that gave up, with their reasons.
pub(crate) async fn dead_letters_page(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let request = list_request(raw.as_deref());
    list_view(
        &state,
        &actor,
        View::DeadLetters,
        request,
        Vec::new(),
        StatusCode::OK,
    )
    .await
}

/// The bulk replay form: the list's filters, and which list it came from.
#[derive(Debug, Deserialize)]
pub(crate) struct BulkReplayForm {
    #[serde(flatten)]
    filters: Filters,
    #[serde(default)]
    view: String,
}

/// `POST /console/runs/replay`: requeues exactly the failed or dead runs the filters match.
pub(crate) async fn replay_matching(
    State(state): State<AppState>,
    CsrfForm(actor, form): CsrfForm<BulkReplayForm>,
) -> PageResult {
    actor.require(Permission::Operate).map_err(page_err)?;
    let view = if form.view == "dead-letters" {
        View::DeadLetters
    } else {
        View::All
    };
    let mut filters = form.filters;
    if view == View::DeadLetters {
        filters.status = RunStatus::Dead.as_str().to_owned();
    }
    let (filter, mut errors) = filters.parse();
    if errors.is_empty() && !matches!(filter.status, Some(RunStatus::Failed | RunStatus::Dead)) {
        errors.push(FieldError {
            field: "status".into(),
            message: "Bulk replay is for failed or dead runs: filter by one of them first.".into(),
        });
    }
    if !errors.is_empty() {
        // Replaying with a filter ignored would requeue more than was shown: refuse instead.
        let request = ListRequest {
            filters,
            cursor: String::new(),
            before: String::new(),
            notice: String::new(),
        };
        return list_view(
            &state,
            &actor,
            view,
            request,
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let detail = serde_json::to_value(&filters).map_err(|e| {
        page_err(AppError::Internal(format!(
            "cannot record the filters: {e}"
        )))
    })?;
    let runs = replay_filtered(&state, &actor, &filter, MAX_REPLAY, detail)
        .await
        .map_err(page_err)?;
    let count = runs.len().to_string();
    let query = filters.query(&[("replayed", &count)]);
    Ok(Redirect::to(&format!("{}?{query}", view.path())).into_response())
}

/// One attempt as the timeline shows it.
pub(crate) struct AttemptRow {
    pub number: i64,
    pub started: String,
    pub finished: String,
    pub duration: String,
    pub outcome: String,
    pub error: String,
    pub error_class: String,
}

/// A duration as people read it: milliseconds, seconds or minutes.
fn human(duration: Duration) -> String {
    let millis = duration.num_milliseconds().max(0);
    match millis {
        0..1_000 => format!("{millis} ms"),
        1_000..60_000 => format!("{:.1} s", millis as f64 / 1_000.0),
        _ => format!("{} min {} s", millis / 60_000, (millis % 60_000) / 1_000),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "run.html")]
struct RunPage {
    chrome: Chrome,
    id: String,
    status: &'static str,
    pair_id: String,
    pair: String,
    flow: String,
    mapping_version: String,
    shopify: String,
    d365: String,
    error: String,
    error_class: String,
    created: String,
    updated: String,
    next_attempt: String,
    attempts: Vec<AttemptRow>,
    input: String,
    output: String,
    replayable: bool,
    notice: String,
    failure: String,
}

fn pretty(value: Option<&serde_json::Value>) -> String {
    value
        .and_then(|v| serde_json::to_string_pretty(v).ok())
        .unwrap_or_default()
}

fn run_id(raw: &str) -> Result<RunId, AppError> {
    // A malformed id names no run of this tenant: the same 404 as another tenant's id.
    raw.parse().map_err(|_| AppError::NotFound)
}

async fn run_view(
    state: &AppState,
    actor: &Actor,
    id: RunId,
    status: StatusCode,
    notice: String,
    failure: String,
) -> PageResult {
    let context = actor.require(Permission::View).map_err(page_err)?;
    let tenant = context.tenant.id;
    let run = state
        .store
        .run(tenant, id)
        .await
        .map_err(|e| page_err(e.into()))?
        .ok_or_else(|| page_err(AppError::NotFound))?;
    let attempts = state
        .store
        .run_attempts(tenant, id)
        .await
        .map_err(|e| page_err(e.into()))?;
    let input_snapshot = syncline_runner::input_snapshot(&state.store, &run)
        .await
        .map_err(|e| page_err(e.into()))?;
    let pair = state
        .store
        .pair(tenant, run.pair_id)
        .await
        .map_err(|e| page_err(e.into()))?
        .map(|p| p.name)
        .unwrap_or_else(|| run.pair_id.to_string());
    let chrome = Chrome::for_actor(state, actor).await.map_err(page_err)?;
    let page = RunPage {
        chrome,
        id: run.id.to_string(),
        status: run.status.as_str(),
        pair_id: run.pair_id.to_string(),
        pair,
        flow: run.flow.clone(),
        mapping_version: run.mapping_version.clone().unwrap_or_default(),
        shopify: run.shopify_ref.clone().unwrap_or_default(),
        d365: run.d365_ref.clone().unwrap_or_default(),
        error: run.error.clone().unwrap_or_default(),
        error_class: run.error_class.clone().unwrap_or_default(),
        created: run.created_at.format(TIME_FORMAT).to_string(),
        updated: run.updated_at.format(TIME_FORMAT).to_string(),
        next_attempt: run
            .next_attempt_at
            .map(|at| at.format(TIME_FORMAT).to_string())
            .unwrap_or_default(),
        attempts: attempts
            .into_iter()
            .map(|a| AttemptRow {
                number: a.number,
                started: a.started_at.format(TIME_FORMAT).to_string(),
                finished: a
                    .finished_at
                    .map(|at| at.format(TIME_FORMAT).to_string())
                    .unwrap_or_default(),
                duration: a
                    .finished_at
                    .map(|at| human(at - a.started_at))
                    .unwrap_or_default(),
                outcome: a.outcome.unwrap_or_else(|| "in progress".to_owned()),
                error: a.error.unwrap_or_default(),
                error_class: a.error_class.unwrap_or_default(),
            })
            .collect(),
        input: pretty(input_snapshot.as_ref()),
        output: pretty(run.output_snapshot.as_ref()),
        replayable: replayable(run.status),
        notice,
        failure,
    };
    Ok((status, page).into_response())
}

/// `GET /console/runs/{run_id}`: one run with its attempts and snapshots.
pub(crate) async fn run_page(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let id = run_id(&id).map_err(page_err)?;
    let notice = if value_of(&query_values(raw.as_deref()), "replayed").is_empty() {
        String::new()
    } else {
        "Replayed: the run is queued again and will be processed shortly.".to_owned()
    };
    run_view(&state, &actor, id, StatusCode::OK, notice, String::new()).await
}

/// The single replay form: where to go back to afterwards.
#[derive(Debug, Deserialize)]
pub(crate) struct ReplayForm {
    #[serde(default)]
    back: String,
}

/// `POST /console/runs/{run_id}/replay`: requeues one finished run.
pub(crate) async fn replay_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(actor, form): CsrfForm<ReplayForm>,
) -> PageResult {
    let id = run_id(&id).map_err(page_err)?;
    match replay_one(&state, &actor, id).await {
        Ok(_) if form.back == "dead-letters" => {
            Ok(Redirect::to("/console/dead-letters?replayed=1").into_response())
        }
        Ok(run) => {
            Ok(Redirect::to(&format!("/console/runs/{}?replayed=1", run.id)).into_response())
        }
        Err(AppError::Conflict(message)) => {
            run_view(
                &state,
                &actor,
                id,
                StatusCode::CONFLICT,
                String::new(),
                message,
            )
            .await
        }
        Err(other) => Err(page_err(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_filters_are_reported_and_ignored() {
        let filters = Filters {
            pair: "not-a-uuid".into(),
            flow: "nope".into(),
            status: "exploded".into(),
            from: "yesterday".into(),
            to: "2026-13-45".into(),
            shopify_order: "x".repeat(MAX_REF + 1),
            d365_order: " SO-1 ".into(),
        };
        let (filter, errors) = filters.parse();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["pair", "flow", "status", "from", "to", "shopify_order"]
        );
        assert!(filter.pair_id.is_none() && filter.status.is_none() && filter.since.is_none());
        assert_eq!(filter.d365_ref.as_deref(), Some("SO-1"));
    }

    #[test]
    fn dates_and_local_times_are_utc_and_a_closing_date_covers_its_day() {
        let day = parse_time("2026-01-31", false).map(|t| t.to_rfc3339());
        assert_eq!(day.as_deref(), Some("2026-01-31T00:00:00+00:00"));
        let end = parse_time("2026-01-31", true).map(|t| t.to_rfc3339());
        assert_eq!(end.as_deref(), Some("2026-02-01T00:00:00+00:00"));
        let local = parse_time("2026-01-31T09:30", false).map(|t| t.to_rfc3339());
        assert_eq!(local.as_deref(), Some("2026-01-31T09:30:00+00:00"));
        let (_, errors) = Filters {
            from: "2026-02-01".into(),
            to: "2026-01-01".into(),
            ..Filters::default()
        }
        .parse();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "to");
    }

    #[test]
    fn a_repeated_query_key_keeps_its_first_value() {
        let values = query_values(Some("status=dead&status=failed&&=x&%ZZ"));
        assert_eq!(value_of(&values, "status"), "dead");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(Duration::milliseconds(250)), "250 ms");
        assert_eq!(human(Duration::milliseconds(1_500)), "1.5 s");
        assert_eq!(human(Duration::seconds(125)), "2 min 5 s");
    }
}
