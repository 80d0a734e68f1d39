//! Runs: the list with its filters, one run with its attempts, replays (one or by filter) and
//! the dead letters.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use syncline_store::{PairId, Run, RunAttempt, RunFilter, RunId, RunStatus, StoreError};
use utoipa::{IntoParams, ToSchema};

use super::{ApiJson, ApiQuery};
use crate::accounts::audit;
use crate::auth::{Actor, ApiActor, Permission};
use crate::{AppError, AppState};

/// Page size of the lists when none is given.
const DEFAULT_PAGE: u32 = 50;
/// The largest page.
const MAX_PAGE: u32 = 500;
/// Runs replayed by one bulk replay when no limit is given.
const DEFAULT_REPLAY: u32 = 1_000;
/// The most runs one bulk replay may put back in the queue.
pub(crate) const MAX_REPLAY: u32 = 10_000;
/// Jobs handed to the dispatcher at once after a bulk replay.
const ANNOUNCE_CONCURRENCY: usize = 16;

/// A run: one event through one flow of a pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    /// Id.
    pub id: uuid::Uuid,
    /// The pair.
    pub pair_id: uuid::Uuid,
    /// The inbox event processed.
    pub inbox_id: uuid::Uuid,
    /// Flow, e.g. `orders`.
    pub flow: String,
    /// `queued`, `running`, `succeeded`, `failed`, `retrying` or `dead`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Mapping version used by the last attempt.
    pub mapping_version: Option<String>,
    /// Shopify order (name or id).
    pub shopify_ref: Option<String>,
    /// D365 sales order number.
    pub d365_ref: Option<String>,
    /// Last error.
    pub error: Option<String>,
    /// Its classification: `transient`, `throttled`, `permanent` or `auth`.
    pub error_class: Option<String>,
    /// What the flow read, with personal data and secrets redacted.
    #[schema(value_type = Option<Object>)]
    pub input_snapshot: Option<serde_json::Value>,
    /// What the flow wrote, with personal data and secrets redacted.
    #[schema(value_type = Option<Object>)]
    pub output_snapshot: Option<serde_json::Value>,
    /// When the next retry is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<Run> for RunView {
    fn from(run: Run) -> Self {
        RunView {
            id: run.id.0,
            pair_id: run.pair_id.0,
            inbox_id: run.inbox_id.0,
            flow: run.flow,
            status: run.status.as_str().to_owned(),
            attempts: run.attempts,
            mapping_version: run.mapping_version,
            shopify_ref: run.shopify_ref,
            d365_ref: run.d365_ref,
            error: run.error,
            error_class: run.error_class,
            input_snapshot: run.input_snapshot,
            output_snapshot: run.output_snapshot,
            next_attempt_at: run.next_attempt_at,
            created_at: run.created_at,
            updated_at: run.updated_at,
        }
    }
}

/// One attempt of a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// 1, 2, …
    pub number: i64,
    /// Started.
    pub started_at: DateTime<Utc>,
    /// Finished, if it did.
    pub finished_at: Option<DateTime<Utc>>,
    /// The status it ended with.
    pub outcome: Option<String>,
    /// Its error.
    pub error: Option<String>,
    /// The error's classification.
    pub error_class: Option<String>,
}

impl From<RunAttempt> for AttemptView {
    fn from(attempt: RunAttempt) -> Self {
        AttemptView {
            number: attempt.number,
            started_at: attempt.started_at,
            finished_at: attempt.finished_at,
            outcome: attempt.outcome,
            error: attempt.error,
            error_class: attempt.error_class,
        }
    }
}

/// A run with its attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    /// The run.
    #[serde(flatten)]
    pub run: RunView,
    /// Its attempts, first first.
    pub attempts: Vec<AttemptView>,
}

/// A page of runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPageView {
    /// The runs.
    pub runs: Vec<RunView>,
    /// Pass as `cursor` to get the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// How many runs a bulk replay put back in the queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayResult {
    /// Runs queued again.
    pub replayed: usize,
}

/// Filters of the run list; every one optional, empty values ignored.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// Only this pair.
    #[param(value_type = Option<uuid::Uuid>)]
    pub pair_id: Option<String>,
    /// Only this flow, e.g. `orders`.
    pub flow: Option<String>,
    /// Only this status: `queued`, `running`, `succeeded`, `failed`, `retrying` or `dead`.
    pub status: Option<String>,
    /// Created at or after (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub since: Option<String>,
    /// Created before (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub until: Option<String>,
    /// Only runs of this Shopify order (exact).
    pub shopify_order: Option<String>,
    /// Only runs of this D365 sales order (exact).
    pub d365_sales_order: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
}

/// Filters of the dead letters; every one optional, empty values ignored.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    /// Only this pair.
    #[param(value_type = Option<uuid::Uuid>)]
    pub pair_id: Option<String>,
    /// Only this flow, e.g. `orders`.
    pub flow: Option<String>,
    /// Created at or after (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub since: Option<String>,
    /// Created before (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub until: Option<String>,
    /// Only runs of this Shopify order (exact).
    pub shopify_order: Option<String>,
    /// Only runs of this D365 sales order (exact).
    pub d365_sales_order: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
}

impl From<DeadLetterQuery> for RunQuery {
    fn from(query: DeadLetterQuery) -> Self {
        RunQuery {
            pair_id: query.pair_id,
            flow: query.flow,
            status: Some(RunStatus::Dead.as_str().to_owned()),
            since: query.since,
            until: query.until,
            shopify_order: query.shopify_order,
            d365_sales_order: query.d365_sales_order,
            cursor: query.cursor,
            limit: query.limit,
        }
    }
}

/// Which finished runs to put back in the queue; every filter optional.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Only this pair.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub pair_id: Option<String>,
    /// Only this flow, e.g. `orders`.
    pub flow: Option<String>,
    /// Only this status: `failed`, `dead` or `succeeded` (others are still in progress).
    pub status: Option<String>,
    /// Created at or after (RFC 3339).
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub since: Option<String>,
    /// Created before (RFC 3339).
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub until: Option<String>,
    /// Only runs of this Shopify order (exact).
    pub shopify_order: Option<String>,
    /// Only runs of this D365 sales order (exact).
    pub d365_sales_order: Option<String>,
    /// The most runs to replay, oldest first: 1 to 10000 (default 1000).
    #[schema(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}

/// The filter fields shared by the list, the dead letters and the bulk replay.
struct FilterFields<'a> {
    pair_id: Option<&'a str>,
    flow: Option<&'a str>,
    status: Option<&'a str>,
    since: Option<&'a str>,
    until: Option<&'a str>,
    shopify_order: Option<&'a str>,
    d365_sales_order: Option<&'a str>,
}

impl FilterFields<'_> {
    fn parse(&self) -> Result<RunFilter, AppError> {
        let status = match given(self.status) {
            Some(text) => Some(RunStatus::parse(text).ok_or_else(|| {
                AppError::BadRequest(format!(
                    "Unknown status `{text}`: use queued, running, succeeded, failed, retrying or dead."
                ))
            })?),
            None => None,
        };
        let pair_id = match given(self.pair_id) {
            Some(text) => Some(text.parse::<PairId>().map_err(|_| {
                AppError::BadRequest(format!("`{text}` is not a pair id (a UUID)."))
            })?),
            None => None,
        };
        let since = time("since", given(self.since))?;
        let until = time("until", given(self.until))?;
        if let (Some(since), Some(until)) = (since, until)
            && since >= until
        {
            return Err(AppError::BadRequest(
                "`since` must be earlier than `until`.".into(),
            ));
        }
        Ok(RunFilter {
            pair_id,
            flow: given(self.flow).map(str::to_owned),
            status,
            since,
            until,
            shopify_ref: given(self.shopify_order).map(str::to_owned),
            d365_ref: given(self.d365_sales_order).map(str::to_owned),
        })
    }
}

impl RunQuery {
    fn filter(&self) -> Result<RunFilter, AppError> {
        FilterFields {
            pair_id: self.pair_id.as_deref(),
            flow: self.flow.as_deref(),
            status: self.status.as_deref(),
            since: self.since.as_deref(),
            until: self.until.as_deref(),
            shopify_order: self.shopify_order.as_deref(),
            d365_sales_order: self.d365_sales_order.as_deref(),
        }
        .parse()
    }

    fn limit(&self) -> Result<u32, AppError> {
        match given(self.limit.as_deref()) {
            None => Ok(DEFAULT_PAGE),
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|limit| (1..=MAX_PAGE).contains(limit))
                .ok_or_else(|| {
                    AppError::BadRequest(format!(
                        "`limit` must be a whole number from 1 to {MAX_PAGE}."
                    ))
                }),
        }
    }
}

impl ReplayRequest {
    fn filter(&self) -> Result<RunFilter, AppError> {
        let filter = FilterFields {
            pair_id: self.pair_id.as_deref(),
            flow: self.flow.as_deref(),
            status: self.status.as_deref(),
            since: self.since.as_deref(),
            until: self.until.as_deref(),
            shopify_order: self.shopify_order.as_deref(),
            d365_sales_order: self.d365_sales_order.as_deref(),
        }
        .parse()?;
        if let Some(status) = filter.status
            && !replayable(status)
        {
            return Err(AppError::BadRequest(format!(
                "Runs that are {} are still in progress and cannot be replayed: filter by failed, dead or succeeded.",
                status.as_str()
            )));
        }
        Ok(filter)
    }

    fn limit(&self) -> Result<u32, AppError> {
        match self.limit {
            None => Ok(DEFAULT_REPLAY),
            Some(limit) if (1..=MAX_REPLAY).contains(&limit) => Ok(limit),
            Some(_) => Err(AppError::BadRequest(format!(
                "`limit` must be from 1 to {MAX_REPLAY}."
            ))),
        }
    }
}

/// A submitted value, unless absent or blank (an empty form field means "any").
fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

fn time(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, AppError> {
    value
        .map(|text| {
            DateTime::parse_from_rfc3339(text)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|_| {
                    AppError::BadRequest(format!(
                        "`{field}` must be an RFC 3339 time such as 2026-01-31T09:00:00Z, not `{text}`."
                    ))
                })
        })
        .transpose()
}

fn run_id(text: &str) -> Result<RunId, AppError> {
    text.parse()
        .map_err(|_| AppError::BadRequest(format!("`{text}` is not a run id (a UUID).")))
}

/// Whether a run in this status has finished, so it may be replayed.
pub(crate) fn replayable(status: RunStatus) -> bool {
    matches!(
        status,
        RunStatus::Failed | RunStatus::Dead | RunStatus::Succeeded
    )
}

async fn page(
    state: &AppState,
    actor: &Actor,
    query: &RunQuery,
) -> Result<Json<RunPageView>, AppError> {
    let context = actor.require(Permission::View)?;
    let filter = query.filter()?;
    let limit = query.limit()?;
    let cursor = given(query.cursor.as_deref());
    let page = state
        .store
        .list_runs(context.tenant.id, &filter, cursor, limit)
        .await
        .map_err(|error| match error {
            StoreError::Corrupt {
                what: "run cursor", ..
            } => AppError::BadRequest(
                "`cursor` is not one this API returned: pass a `next_cursor` back unchanged."
                    .into(),
            ),
            other => other.into(),
        })?;
    let mut runs = page.runs;
    syncline_runner::fill_input_snapshots(&state.store, context.tenant.id, &mut runs).await?;
    Ok(Json(RunPageView {
        runs: runs.into_iter().map(RunView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Hands a queued run to the dispatcher. A failure is not the caller's: the sweeper hands
/// queued runs over again, so it is only logged.
async fn announce(state: &AppState, run: &Run) {
    let job = syncline_runner::run_job(run.tenant_id, run.id);
    if let Err(error) = state.dispatcher.enqueue(job).await {
        tracing::warn!(%error, tenant_id = %run.tenant_id, pair_id = %run.pair_id, run_id = %run.id,
            "cannot announce a replayed run; the sweeper will dispatch it");
    }
}

/// The tenant's runs, newest first, filtered and paged.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(RunQuery),
    responses((status = 200, body = RunPageView), (status = 400, body = crate::error::ErrorBody)))]
pub async fn list_runs(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(query): ApiQuery<RunQuery>,
) -> Result<Json<RunPageView>, AppError> {
    page(&state, &actor, &query).await
}

/// The dead letters: runs that gave up, newest first, filtered and paged.
#[utoipa::path(get, path = "/api/v1/dead-letters", tag = "runs", params(DeadLetterQuery),
    responses((status = 200, body = RunPageView), (status = 400, body = crate::error::ErrorBody)))]
pub async fn dead_letters(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(query): ApiQuery<DeadLetterQuery>,
) -> Result<Json<RunPageView>, AppError> {
    page(&state, &actor, &query.into()).await
}

/// One run with its attempts.
#[utoipa::path(get, path = "/api/v1/runs/{run_id}", tag = "runs", params(("run_id" = uuid::Uuid, Path, description = "Run id")),
    responses((status = 200, body = RunDetail), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_run(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> Result<Json<RunDetail>, AppError> {
    let context = actor.require(Permission::View)?;
    let tenant = context.tenant.id;
    let id = run_id(&id)?;
    let run = state
        .store
        .run(tenant, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let attempts = state.store.run_attempts(tenant, id).await?;
    let input_snapshot = syncline_runner::input_snapshot(&state.store, &run).await?;
    let mut run = RunView::from(run);
    run.input_snapshot = input_snapshot;
    Ok(Json(RunDetail {
        run,
        attempts: attempts.into_iter().map(AttemptView::from).collect(),
    }))
}

/// Puts a finished run (failed, dead or succeeded) back in the queue.
#[utoipa::path(post, path = "/api/v1/runs/{run_id}/replay", tag = "runs", params(("run_id" = uuid::Uuid, Path, description = "Run id")),
    responses((status = 200, body = RunView), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn replay_run(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> Result<Json<RunView>, AppError> {
    let id = run_id(&id)?;
    let run = replay_one(&state, &actor, id).await?;
    Ok(Json(run.into()))
}

/// Puts one finished run back in the queue, audits it and hands it to the dispatcher; the
/// API and the console share it so both replay and audit alike.
pub(crate) async fn replay_one(
    state: &AppState,
    actor: &Actor,
    id: RunId,
) -> Result<Run, AppError> {
    let context = actor.require(Permission::Operate)?;
    let tenant = context.tenant.id;
    let before = state
        .store
        .run(tenant, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let run = state
        .store
        .requeue_run(tenant, id)
        .await
        .map_err(|error| match error {
            // Still in progress, or replayed by someone else since it was read (then queued).
            StoreError::Conflict { .. } => AppError::Conflict(format!(
                "This run is still in progress ({}); replay it once it has finished.",
                if replayable(before.status) {
                    RunStatus::Queued.as_str()
                } else {
                    before.status.as_str()
                }
            )),
            other => other.into(),
        })?;
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "run.replayed",
        json!({ "run_id": run.id, "pair_id": run.pair_id, "flow": run.flow, "previous_status": before.status }),
    )
    .await;
    announce(state, &run).await;
    Ok(run)
}

/// Puts up to `limit` finished runs matching `filter` back in the queue, oldest first,
/// audits the replay with `request` (the filter as submitted) and hands them to the dispatcher.
pub(crate) async fn replay_matching(
    state: &AppState,
    actor: &Actor,
    filter: &RunFilter,
    limit: u32,
    request: serde_json::Value,
) -> Result<Vec<Run>, AppError> {
    let context = actor.require(Permission::Operate)?;
    let tenant = context.tenant.id;
    let runs = state.store.requeue_runs(tenant, filter, limit).await?;
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "runs.replayed",
        json!({ "filter": request, "limit": limit, "count": runs.len() }),
    )
    .await;
    futures::stream::iter(&runs)
        .for_each_concurrent(ANNOUNCE_CONCURRENCY, |run| announce(state, run))
        .await;
    Ok(runs)
}

/// Puts every finished run matching the filter back in the queue, oldest first, up to `limit`.
#[utoipa::path(post, path = "/api/v1/runs/replay", tag = "runs", request_body = ReplayRequest,
    responses((status = 200, body = ReplayResult), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody)))]
pub async fn replay_runs(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(request): ApiJson<ReplayRequest>,
) -> Result<Json<ReplayResult>, AppError> {
    // Checked before the filter is read, so a viewer learns nothing from validation.
    actor.require(Permission::Operate)?;
    let filter = request.filter()?;
    let limit = request.limit()?;
    let detail = serde_json::to_value(&request)
        .map_err(|e| AppError::Internal(format!("cannot record the replay request: {e}")))?;
    let runs = replay_matching(&state, &actor, &filter, limit, detail).await?;
    Ok(Json(ReplayResult {
        replayed: runs.len(),
    }))
}
