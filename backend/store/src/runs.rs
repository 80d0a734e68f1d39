//! Runs (one event through one flow, with its attempts) and links (Shopify id ↔ D365 key).
//!
//! Claims are atomic (`UPDATE … RETURNING` on a lease), so any number of workers can share the
//! table; the row, not the queue, says what is left to do.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::types::Json;

use crate::pool::{Pool, on_pool, on_write};
use crate::{InboxId, PairId, RunId, Store, StoreError, TenantId};

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker holds it.
    Running,
    /// Done.
    Succeeded,
    /// Failed and waiting for a person (e.g. a replay after a fix).
    Failed,
    /// Failed transiently; will be tried again at `next_attempt_at`.
    Retrying,
    /// Gave up: a dead letter.
    Dead,
}

impl RunStatus {
    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Retrying => "retrying",
            RunStatus::Dead => "dead",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(value: &str) -> Option<RunStatus> {
        [
            RunStatus::Queued,
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Retrying,
            RunStatus::Dead,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }
}

/// A run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// Primary key.
    pub id: RunId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Pair.
    pub pair_id: PairId,
    /// The event processed.
    pub inbox_id: InboxId,
    /// Flow name, e.g. `orders`.
    pub flow: String,
    /// Status.
    pub status: RunStatus,
    /// Attempts so far.
    pub attempts: i64,
    /// Mapping version used by the last attempt.
    pub mapping_version: Option<String>,
    /// Shopify reference (order name or id).
    pub shopify_ref: Option<String>,
    /// D365 reference (sales order number).
    pub d365_ref: Option<String>,
    /// Last error.
    pub error: Option<String>,
    /// Its classification (`transient`, `throttled`, `permanent`, `auth`).
    pub error_class: Option<String>,
    /// Redacted input.
    pub input_snapshot: Option<serde_json::Value>,
    /// Redacted output.
    pub output_snapshot: Option<serde_json::Value>,
    /// When a retry is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct RunRow {
    id: RunId,
    tenant_id: TenantId,
    pair_id: PairId,
    inbox_id: InboxId,
    flow: String,
    status: String,
    attempts: i64,
    mapping_version: Option<String>,
    shopify_ref: Option<String>,
    d365_ref: Option<String>,
    error: Option<String>,
    error_class: Option<String>,
    input_snapshot: Option<Json<serde_json::Value>>,
    output_snapshot: Option<Json<serde_json::Value>>,
    next_attempt_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<RunRow> for Run {
    type Error = StoreError;
    fn try_from(row: RunRow) -> Result<Self, StoreError> {
        Ok(Run {
            id: row.id,
            tenant_id: row.tenant_id,
            pair_id: row.pair_id,
            inbox_id: row.inbox_id,
            flow: row.flow,
            status: RunStatus::parse(&row.status).ok_or_else(|| StoreError::Corrupt {
                what: "runs.status",
                detail: row.status.clone(),
            })?,
            attempts: row.attempts,
            mapping_version: row.mapping_version,
            shopify_ref: row.shopify_ref,
            d365_ref: row.d365_ref,
            error: row.error,
            error_class: row.error_class,
            input_snapshot: row.input_snapshot.map(|j| j.0),
            output_snapshot: row.output_snapshot.map(|j| j.0),
            next_attempt_at: row.next_attempt_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const RUN_COLUMNS: &str = "id, tenant_id, pair_id, inbox_id, flow, status, attempts, mapping_version, shopify_ref, d365_ref, \
                           error, error_class, input_snapshot, output_snapshot, next_attempt_at, created_at, updated_at";

/// A [`RunFilter`] in SQL: `$1` the tenant, `$2`…`$8` the filter's fields in their order.
const FILTER_WHERE: &str = "tenant_id = $1 \
    AND ($2 IS NULL OR pair_id = $2) AND ($3 IS NULL OR flow = $3) AND ($4 IS NULL OR status = $4) \
    AND ($5 IS NULL OR created_at >= $5) AND ($6 IS NULL OR created_at < $6) \
    AND ($7 IS NULL OR shopify_ref = $7) AND ($8 IS NULL OR d365_ref = $8)";

/// Binds `$1`…`$8` of [`FILTER_WHERE`] on a query (a macro: the query type differs per backend).
macro_rules! bind_filter {
    ($query:expr, $tenant:expr, $filter:expr) => {
        $query
            .bind($tenant)
            .bind($filter.pair_id)
            .bind(&$filter.flow)
            .bind($filter.status.map(RunStatus::as_str))
            .bind($filter.since)
            .bind($filter.until)
            .bind(&$filter.shopify_ref)
            .bind(&$filter.d365_ref)
    };
}

/// One attempt of a run.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RunAttempt {
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

/// A run to create.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Pair.
    pub pair_id: PairId,
    /// Event.
    pub inbox_id: InboxId,
    /// Flow.
    pub flow: String,
    /// Shopify reference.
    pub shopify_ref: Option<String>,
    /// Redacted input.
    pub input_snapshot: Option<serde_json::Value>,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// New status: `Succeeded`, `Retrying`, `Failed` or `Dead`.
    pub status: RunStatus,
    /// When to retry, for `Retrying`.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Error text, when it failed.
    pub error: Option<String>,
    /// Error classification.
    pub error_class: Option<String>,
    /// D365 reference created.
    pub d365_ref: Option<String>,
    /// Redacted output.
    pub output_snapshot: Option<serde_json::Value>,
    /// Redacted input, when the run has none yet (the worker takes it from the payload it
    /// parses anyway).
    pub input_snapshot: Option<serde_json::Value>,
    /// Mapping version used.
    pub mapping_version: Option<String>,
}

/// Filters for the run list; every field optional.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only this pair.
    pub pair_id: Option<PairId>,
    /// Only this flow.
    pub flow: Option<String>,
    /// Only this status.
    pub status: Option<RunStatus>,
    /// Created at or after.
    pub since: Option<DateTime<Utc>>,
    /// Created before.
    pub until: Option<DateTime<Utc>>,
    /// Shopify reference (exact).
    pub shopify_ref: Option<String>,
    /// D365 reference (exact).
    pub d365_ref: Option<String>,
}

/// A page of runs, newest first, and the cursor of the next page.
#[derive(Debug, Clone, Serialize)]
pub struct RunPage {
    /// The runs.
    pub runs: Vec<Run>,
    /// Pass back to get the next page; `None` at the end.
    pub next_cursor: Option<String>,
    /// Pass to [`Store::list_newer_runs`] to get the page before this one; `None` when this
    /// page starts at the newest run.
    pub prev_cursor: Option<String>,
}

/// A pair's figures for the dashboard.
#[derive(Debug, Clone, Serialize)]
pub struct PairActivity {
    /// The pair.
    pub pair_id: PairId,
    /// Distinct events (webhook deliveries) that made runs since `day_start`.
    pub events_today: i64,
    /// Runs created since `day_start` that succeeded.
    pub succeeded_today: i64,
    /// Runs created since `day_start` that failed or gave up.
    pub failed_today: i64,
    /// Runs waiting or in progress: queued, retrying or running.
    pub backlog: i64,
    /// When a run of this pair last succeeded.
    pub last_success_at: Option<DateTime<Utc>>,
    /// The most recently changed run that holds an error, with that error.
    pub last_error: Option<(RunId, String, DateTime<Utc>)>,
}

/// Runs created in one hour, by outcome.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HourlyRuns {
    /// Start of the hour.
    pub hour: DateTime<Utc>,
    /// Succeeded.
    pub succeeded: i64,
    /// Failed or dead.
    pub failed: i64,
    /// Anything else (queued, running, retrying).
    pub other: i64,
}

/// The dashboard's figures for a tenant: per pair, and per hour of the last 24.
#[derive(Debug, Clone, Serialize)]
pub struct RunActivity {
    /// One entry per pair that has runs.
    pub pairs: Vec<PairActivity>,
    /// 24 entries, oldest first, the last being the current hour.
    pub hours: Vec<HourlyRuns>,
}

fn encode_cursor(run: &Run) -> String {
    format!("{}_{}", run.created_at.timestamp_micros(), run.id)
}

fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, RunId)> {
    let (micros, id) = cursor.split_once('_')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id.parse().ok()?,
    ))
}

/// The start of the hour holding `at`.
fn hour_start(at: DateTime<Utc>) -> DateTime<Utc> {
    let seconds = at.timestamp();
    DateTime::from_timestamp(seconds - seconds.rem_euclid(3600), 0).unwrap_or(at)
}

impl Store {
    /// Creates the run for (pair, event, flow), or returns the existing one: re-delivery of an
    /// event never makes a second run. The flag says whether it was created now.
    pub async fn create_run(
        &self,
        tenant: TenantId,
        new: &NewRun,
    ) -> Result<(Run, bool), StoreError> {
        let now = Utc::now();
        let sql = format!(
            "INSERT INTO runs (id, tenant_id, pair_id, inbox_id, flow, status, shopify_ref, input_snapshot, created_at, updated_at, dispatched_at) \
             VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, $8, $8) ON CONFLICT (pair_id, inbox_id, flow) DO NOTHING RETURNING {RUN_COLUMNS}"
        );
        let row: Option<RunRow> = on_write!(self, pool => {
            sqlx::query_as(&sql)
                .bind(RunId::new())
                .bind(tenant)
                .bind(new.pair_id)
                .bind(new.inbox_id)
                .bind(&new.flow)
                .bind(&new.shopify_ref)
                .bind(new.input_snapshot.as_ref().map(Json))
                .bind(now)
                .fetch_optional(pool)
                .await
        })?;
        if let Some(row) = row {
            return Ok((row.try_into()?, true));
        }
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = $1 AND pair_id = $2 AND inbox_id = $3 AND flow = $4"
        );
        let row: RunRow = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(tenant).bind(new.pair_id).bind(new.inbox_id).bind(&new.flow).fetch_one(pool).await
        })?;
        Ok((row.try_into()?, false))
    }

    /// Takes a run for one attempt if it is due (queued, a retry whose time has come, or a
    /// running one whose worker's lease expired), and opens the attempt's row. Of concurrent
    /// claims, exactly one wins.
    pub async fn claim_run(
        &self,
        tenant: TenantId,
        id: RunId,
        lease: Duration,
    ) -> Result<Option<Run>, StoreError> {
        let now = Utc::now();
        let claim = format!(
            "UPDATE runs SET status = 'running', attempts = attempts + 1, lease_until = $3, updated_at = $4, dispatched_at = NULL \
             WHERE tenant_id = $1 AND id = $2 AND ( status = 'queued' \
               OR (status = 'retrying' AND (next_attempt_at IS NULL OR next_attempt_at <= $4)) \
               OR (status = 'running' AND lease_until < $4) ) \
             RETURNING {RUN_COLUMNS}"
        );
        let attempt = "INSERT INTO run_attempts (run_id, tenant_id, number, started_at) VALUES ($1, $2, $3, $4) \
                       ON CONFLICT (run_id, number) DO NOTHING";
        let row: Option<RunRow> = match &self.pool {
            // One statement, so one round trip and one commit for both rows.
            Pool::Postgres(pool) => {
                let sql = format!(
                    "WITH claimed AS ({claim}), attempt AS ( \
                       INSERT INTO run_attempts (run_id, tenant_id, number, started_at) SELECT id, tenant_id, attempts, $4 FROM claimed \
                       ON CONFLICT (run_id, number) DO NOTHING) \
                     SELECT {RUN_COLUMNS} FROM claimed"
                );
                sqlx::query_as(&sql)
                    .bind(tenant)
                    .bind(id)
                    .bind(now + lease)
                    .bind(now)
                    .fetch_optional(pool)
                    .await?
            }
            // SQLite has no writing CTEs. The attempt row follows the claim; should it be
            // missing after a crash, the next claim's attempt has its own number anyway.
            Pool::Sqlite { write, .. } => {
                let row: Option<RunRow> = sqlx::query_as(&claim)
                    .bind(tenant)
                    .bind(id)
                    .bind(now + lease)
                    .bind(now)
                    .fetch_optional(write)
                    .await?;
                if let Some(row) = &row {
                    sqlx::query(attempt)
                        .bind(row.id)
                        .bind(tenant)
                        .bind(row.attempts)
                        .bind(now)
                        .execute(write)
                        .await?;
                }
                row
            }
        };
        row.map(Run::try_from).transpose()
    }

    /// Records how the current attempt ended. Reads nothing back: the worker has what it
    /// needs, and decoding the snapshots just written cost more than writing them.
    pub async fn finish_run(
        &self,
        tenant: TenantId,
        id: RunId,
        outcome: &RunOutcome,
    ) -> Result<(), StoreError> {
        self.finish_run_billed(tenant, id, outcome, None)
            .await
            .map(|_| ())
    }

    /// [`Store::finish_run`], metering a billable transaction with it (see
    /// [`Store::record_billable`]); answers whether the transaction was counted now. The run,
    /// its attempt and the meter commit together (on PostgreSQL in one statement), so a
    /// crash leaves either all three or none, and the retried run counts then.
    pub async fn finish_run_billed(
        &self,
        tenant: TenantId,
        id: RunId,
        outcome: &RunOutcome,
        billable: Option<&crate::BillableEvent<'_>>,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        let finish = "UPDATE runs SET status = $3, next_attempt_at = $4, error = $5, error_class = $6, \
                      d365_ref = COALESCE($7, d365_ref), output_snapshot = COALESCE($8, output_snapshot), \
                      mapping_version = COALESCE($9, mapping_version), input_snapshot = COALESCE($11, input_snapshot), \
                      lease_until = NULL, updated_at = $10, dispatched_at = NULL \
                      WHERE tenant_id = $1 AND id = $2";
        macro_rules! bind_finish {
            ($query:expr) => {
                $query
                    .bind(tenant)
                    .bind(id)
                    .bind(outcome.status.as_str())
                    .bind(outcome.next_attempt_at)
                    .bind(&outcome.error)
                    .bind(&outcome.error_class)
                    .bind(&outcome.d365_ref)
                    .bind(outcome.output_snapshot.as_ref().map(Json))
                    .bind(&outcome.mapping_version)
                    .bind(now)
                    .bind(outcome.input_snapshot.as_ref().map(Json))
            };
        }
        let write = match &self.pool {
            Pool::Sqlite { write, .. } => write,
            Pool::Postgres(pool) => {
                let billed = match billable {
                    Some(_) => {
                        "INSERT INTO billable_events (id, tenant_id, pair_id, flow, action, record_id, run_id, day, created_at) \
                     SELECT $12, $1, $13, $14, $15, $16, $2, $17, $18 FROM finished \
                     ON CONFLICT (pair_id, flow, action, record_id) DO NOTHING RETURNING id"
                    }
                    None => "SELECT id FROM finished WHERE false",
                };
                let sql = format!(
                    "WITH finished AS ({finish} RETURNING id, attempts), \
                 attempt AS (UPDATE run_attempts a SET finished_at = $10, outcome = $3, error = $5, error_class = $6 \
                   FROM finished f WHERE a.tenant_id = $1 AND a.run_id = f.id AND a.number = f.attempts), \
                 billed AS ({billed}) \
                 SELECT (SELECT COUNT(*) FROM finished), (SELECT COUNT(*) FROM billed)"
                );
                let mut query = bind_finish!(sqlx::query_as::<_, (i64, i64)>(&sql));
                if let Some(event) = billable {
                    query = query
                        .bind(uuid::Uuid::now_v7())
                        .bind(event.pair_id)
                        .bind(event.flow)
                        .bind(event.action)
                        .bind(event.record_id)
                        .bind(event.at.date_naive())
                        .bind(event.at);
                }
                let (finished, billed) = query.fetch_one(pool).await?;
                if finished == 0 {
                    return Err(StoreError::NotFound);
                }
                return Ok(billed > 0);
            }
        };
        // SQLite has no writing CTEs: one transaction instead.
        let mut tx = write.begin().await?;
        let changed = bind_finish!(sqlx::query(finish))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        let attempt = "UPDATE run_attempts SET finished_at = $3, outcome = $4, error = $5, error_class = $6 \
                       WHERE tenant_id = $1 AND run_id = $2 \
                       AND number = (SELECT attempts FROM runs WHERE tenant_id = $1 AND id = $2)";
        sqlx::query(attempt)
            .bind(tenant)
            .bind(id)
            .bind(now)
            .bind(outcome.status.as_str())
            .bind(&outcome.error)
            .bind(&outcome.error_class)
            .execute(&mut *tx)
            .await?;
        let counted = match billable {
            Some(event) => sqlx::query_scalar::<_, uuid::Uuid>(crate::billing::RECORD_BILLABLE)
                .bind(uuid::Uuid::now_v7())
                .bind(tenant)
                .bind(event.pair_id)
                .bind(event.flow)
                .bind(event.action)
                .bind(event.record_id)
                .bind(event.run_id)
                .bind(event.at.date_naive())
                .bind(event.at)
                .fetch_optional(&mut *tx)
                .await?
                .is_some(),
            None => false,
        };
        tx.commit().await?;
        Ok(counted)
    }

    /// Puts a finished run back in the queue (replay).
    pub async fn requeue_run(&self, tenant: TenantId, id: RunId) -> Result<Run, StoreError> {
        let sql = format!(
            "UPDATE runs SET status = 'queued', next_attempt_at = NULL, lease_until = NULL, updated_at = $3, dispatched_at = $3 \
             WHERE tenant_id = $1 AND id = $2 AND status IN ('failed', 'dead', 'succeeded') RETURNING {RUN_COLUMNS}"
        );
        let row: Option<RunRow> = on_write!(self, pool => sqlx::query_as(&sql).bind(tenant).bind(id).bind(Utc::now()).fetch_optional(pool).await)?;
        match row {
            Some(row) => row.try_into(),
            None => match self.run(tenant, id).await? {
                Some(_) => Err(StoreError::Conflict {
                    constraint: "ck_runs_replayable".into(),
                }),
                None => Err(StoreError::NotFound),
            },
        }
    }

    /// One of the tenant's runs.
    pub async fn run(&self, tenant: TenantId, id: RunId) -> Result<Option<Run>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = $1 AND id = $2");
        let row: Option<RunRow> = on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).bind(id).fetch_optional(pool).await)?;
        row.map(Run::try_from).transpose()
    }

    /// A run's attempts, in order.
    pub async fn run_attempts(
        &self,
        tenant: TenantId,
        id: RunId,
    ) -> Result<Vec<RunAttempt>, StoreError> {
        let sql = "SELECT number, started_at, finished_at, outcome, error, error_class FROM run_attempts \
                   WHERE tenant_id = $1 AND run_id = $2 ORDER BY number";
        let rows = on_pool!(self, pool => sqlx::query_as(sql).bind(tenant).bind(id).fetch_all(pool).await)?;
        Ok(rows)
    }

    /// The tenant's runs matching `filter`, newest first, `limit` at a time.
    pub async fn list_runs(
        &self,
        tenant: TenantId,
        filter: &RunFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<RunPage, StoreError> {
        let after = match cursor {
            Some(text) => Some(decode_cursor(text).ok_or(StoreError::Corrupt {
                what: "run cursor",
                detail: text.to_owned(),
            })?),
            None => None,
        };
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE {FILTER_WHERE} \
             AND ($9 IS NULL OR created_at < $9 OR (created_at = $9 AND id < $10)) \
             ORDER BY created_at DESC, id DESC LIMIT $11"
        );
        let limit = limit.clamp(1, 500);
        let rows: Vec<RunRow> = on_pool!(self, pool => {
            bind_filter!(sqlx::query_as(&sql), tenant, filter)
                .bind(after.map(|(at, _)| at))
                .bind(after.map(|(_, id)| id))
                .bind(i64::from(limit) + 1)
                .fetch_all(pool)
                .await
        })?;
        let mut runs: Vec<Run> = rows
            .into_iter()
            .map(Run::try_from)
            .collect::<Result<_, _>>()?;
        let next_cursor = if runs.len() > limit as usize {
            runs.truncate(limit as usize);
            runs.last().map(encode_cursor)
        } else {
            None
        };
        // A page reached through a cursor has newer runs before it (at least the cursor's own).
        let prev_cursor = after.and(runs.first().map(encode_cursor));
        Ok(RunPage {
            runs,
            next_cursor,
            prev_cursor,
        })
    }

    /// The `limit` runs matching `filter` just newer than `cursor`, newest first: the page
    /// before the one `cursor` came from (paging back towards the newest run).
    pub async fn list_newer_runs(
        &self,
        tenant: TenantId,
        filter: &RunFilter,
        cursor: &str,
        limit: u32,
    ) -> Result<RunPage, StoreError> {
        let (at, id) = decode_cursor(cursor).ok_or(StoreError::Corrupt {
            what: "run cursor",
            detail: cursor.to_owned(),
        })?;
        // Oldest first from the cursor, so LIMIT keeps the runs nearest to it. The cursor holds
        // microseconds while SQLite keeps nanoseconds, so its own run can compare as newer than
        // the cursor: it is excluded by id.
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE {FILTER_WHERE} \
             AND (created_at > $9 OR (created_at = $9 AND id > $10)) AND id <> $10 \
             ORDER BY created_at ASC, id ASC LIMIT $11"
        );
        let limit = limit.clamp(1, 500);
        let rows: Vec<RunRow> = on_pool!(self, pool => {
            bind_filter!(sqlx::query_as(&sql), tenant, filter)
                .bind(at)
                .bind(id)
                .bind(i64::from(limit) + 1)
                .fetch_all(pool)
                .await
        })?;
        let mut runs: Vec<Run> = rows
            .into_iter()
            .map(Run::try_from)
            .collect::<Result<_, _>>()?;
        let more_newer = runs.len() > limit as usize;
        runs.truncate(limit as usize);
        runs.reverse();
        Ok(RunPage {
            prev_cursor: if more_newer {
                runs.first().map(encode_cursor)
            } else {
                None
            },
            // The cursor's own run is older than all of these, so an older page always exists.
            next_cursor: runs.last().map(encode_cursor),
            runs,
        })
    }

    /// How many of the tenant's runs match `filter` (what a bulk replay would consider).
    pub async fn count_runs(
        &self,
        tenant: TenantId,
        filter: &RunFilter,
    ) -> Result<i64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM runs WHERE {FILTER_WHERE}");
        let count: i64 = on_pool!(self, pool => {
            bind_filter!(sqlx::query_scalar(&sql), tenant, filter)
                .fetch_one(pool)
                .await
        })?;
        Ok(count)
    }

    /// The dashboard's figures: per pair since `day_start`, and per hour for the 24 hours
    /// ending with the hour that holds `now`.
    pub async fn run_activity(
        &self,
        tenant: TenantId,
        day_start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<RunActivity, StoreError> {
        // Backlog and last success are not limited to today, so this reads all the tenant's
        // runs once; the GROUP BY keeps the answer to one row per pair.
        let per_pair = "SELECT pair_id, \
               COUNT(DISTINCT CASE WHEN created_at >= $2 THEN inbox_id END), \
               SUM(CASE WHEN created_at >= $2 AND status = 'succeeded' THEN 1 ELSE 0 END), \
               SUM(CASE WHEN created_at >= $2 AND status IN ('failed', 'dead') THEN 1 ELSE 0 END), \
               SUM(CASE WHEN status IN ('queued', 'retrying', 'running') THEN 1 ELSE 0 END), \
               MAX(CASE WHEN status = 'succeeded' THEN updated_at END) \
             FROM runs WHERE tenant_id = $1 GROUP BY pair_id";
        type PairRow = (PairId, i64, i64, i64, i64, Option<DateTime<Utc>>);
        let rows: Vec<PairRow> = on_pool!(self, pool => {
            sqlx::query_as(per_pair).bind(tenant).bind(day_start).fetch_all(pool).await
        })?;
        let last_errors = "SELECT pair_id, id, error, updated_at FROM ( \
               SELECT pair_id, id, error, updated_at, \
                 ROW_NUMBER() OVER (PARTITION BY pair_id ORDER BY updated_at DESC, id DESC) AS n \
               FROM runs WHERE tenant_id = $1 AND error IS NOT NULL) AS latest \
             WHERE n = 1";
        let errors: Vec<(PairId, RunId, String, DateTime<Utc>)> = on_pool!(self, pool => {
            sqlx::query_as(last_errors).bind(tenant).fetch_all(pool).await
        })?;
        let pairs = rows
            .into_iter()
            .map(
                |(
                    pair_id,
                    events_today,
                    succeeded_today,
                    failed_today,
                    backlog,
                    last_success_at,
                )| {
                    PairActivity {
                        pair_id,
                        events_today,
                        succeeded_today,
                        failed_today,
                        backlog,
                        last_success_at,
                        last_error: errors
                            .iter()
                            .find(|(pair, ..)| *pair == pair_id)
                            .map(|(_, run, error, at)| (*run, error.clone(), *at)),
                    }
                },
            )
            .collect();

        // Hour boundaries are bound as values and compared like every other time filter, so
        // one query text buckets the same way on both backends (SQLite keeps times as text).
        let first = hour_start(now) - Duration::hours(23);
        let starts: Vec<DateTime<Utc>> = (0..24).map(|h| first + Duration::hours(h)).collect();
        let buckets: String = (1..24)
            .map(|h| format!("WHEN created_at < ${} THEN {} ", h + 2, h - 1))
            .collect();
        let per_hour = format!(
            "SELECT CAST(CASE {buckets}ELSE 23 END AS BIGINT) AS bucket, status, COUNT(*) FROM runs \
             WHERE tenant_id = $1 AND created_at >= $2 GROUP BY bucket, status"
        );
        let counts: Vec<(i64, String, i64)> = on_pool!(self, pool => {
            let mut query = sqlx::query_as(&per_hour).bind(tenant);
            for start in &starts {
                query = query.bind(*start);
            }
            query.fetch_all(pool).await
        })?;
        let mut hours: Vec<HourlyRuns> = starts
            .iter()
            .map(|hour| HourlyRuns {
                hour: *hour,
                succeeded: 0,
                failed: 0,
                other: 0,
            })
            .collect();
        for (bucket, status, count) in counts {
            let status = RunStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
                what: "runs.status",
                detail: status.clone(),
            })?;
            let Some(hour) = usize::try_from(bucket).ok().and_then(|b| hours.get_mut(b)) else {
                continue;
            };
            match status {
                RunStatus::Succeeded => hour.succeeded += count,
                RunStatus::Failed | RunStatus::Dead => hour.failed += count,
                RunStatus::Queued | RunStatus::Running | RunStatus::Retrying => hour.other += count,
            }
        }
        Ok(RunActivity { pairs, hours })
    }

    /// Runs whose time has come, across tenants, oldest first: for the sweeper, which hands
    /// them to the dispatcher again (lost queue entries, crashed workers, due retries). Each
    /// returned run is marked as handed off now; one handed off less than `stale` ago is skipped
    /// unless `force` (after a restart or a lost queue, when nothing in the queue can be trusted).
    pub async fn due_runs(
        &self,
        limit: u32,
        stale: Duration,
        force: bool,
    ) -> Result<Vec<(TenantId, RunId)>, StoreError> {
        let now = Utc::now();
        let sql = "UPDATE runs SET dispatched_at = $1 WHERE id IN ( \
                     SELECT id FROM runs WHERE (status = 'queued' \
                       OR (status = 'retrying' AND (next_attempt_at IS NULL OR next_attempt_at <= $1)) \
                       OR (status = 'running' AND lease_until < $1)) \
                     AND ($3 OR dispatched_at IS NULL OR dispatched_at < $2) \
                     ORDER BY updated_at LIMIT $4) \
                   RETURNING tenant_id, id";
        let rows: Vec<(TenantId, RunId)> = on_write!(self, pool => {
            sqlx::query_as(sql).bind(now).bind(now - stale).bind(force).bind(i64::from(limit)).fetch_all(pool).await
        })?;
        Ok(rows)
    }

    /// Puts every replayable run matching `filter` back in the queue (bulk replay); returns
    /// the runs, which the caller hands to the dispatcher.
    pub async fn requeue_runs(
        &self,
        tenant: TenantId,
        filter: &RunFilter,
        limit: u32,
    ) -> Result<Vec<Run>, StoreError> {
        let now = Utc::now();
        let sql = format!(
            "UPDATE runs SET status = 'queued', next_attempt_at = NULL, lease_until = NULL, updated_at = $9, dispatched_at = $9 \
             WHERE id IN (SELECT id FROM runs WHERE {FILTER_WHERE} AND status IN ('failed', 'dead', 'succeeded') \
             ORDER BY created_at LIMIT $10) \
             AND tenant_id = $1 RETURNING {RUN_COLUMNS}"
        );
        let rows: Vec<RunRow> = on_write!(self, pool => {
            bind_filter!(sqlx::query_as(&sql), tenant, filter)
                .bind(now)
                .bind(i64::from(limit.clamp(1, 10_000)))
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(Run::try_from).collect()
    }

    /// Across all tenants, the runs waiting or in progress per status with the creation time of
    /// the oldest: platform figures for `/metrics`, never shown to a tenant.
    pub async fn queue_stats(
        &self,
    ) -> Result<Vec<(RunStatus, i64, Option<DateTime<Utc>>)>, StoreError> {
        let sql = "SELECT status, COUNT(*), MIN(created_at) FROM runs \
                   WHERE status IN ('queued', 'running', 'retrying') GROUP BY status";
        let rows: Vec<(String, i64, Option<DateTime<Utc>>)> =
            on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?;
        rows.into_iter()
            .map(|(status, count, oldest)| {
                RunStatus::parse(&status)
                    .map(|s| (s, count, oldest))
                    .ok_or(StoreError::Corrupt {
                        what: "runs.status",
                        detail: status,
                    })
            })
            .collect()
    }

    /// How many of the tenant's runs are in each status (for dashboards and tests).
    pub async fn run_counts(
        &self,
        tenant: TenantId,
        pair: Option<PairId>,
    ) -> Result<Vec<(RunStatus, i64)>, StoreError> {
        let sql = "SELECT status, COUNT(*) FROM runs WHERE tenant_id = $1 AND ($2 IS NULL OR pair_id = $2) GROUP BY status";
        let rows: Vec<(String, i64)> = on_pool!(self, pool => sqlx::query_as(sql).bind(tenant).bind(pair).fetch_all(pool).await)?;
        rows.into_iter()
            .map(|(status, count)| {
                RunStatus::parse(&status)
                    .map(|s| (s, count))
                    .ok_or(StoreError::Corrupt {
                        what: "runs.status",
                        detail: status,
                    })
            })
            .collect()
    }

    /// Records that a Shopify object became a D365 record; the first link wins and is returned.
    pub async fn put_link(
        &self,
        tenant: TenantId,
        pair: PairId,
        entity: &str,
        shopify_id: &str,
        d365_key: &str,
    ) -> Result<String, StoreError> {
        let sql = "INSERT INTO links (tenant_id, pair_id, entity, shopify_id, d365_key, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                   ON CONFLICT (pair_id, entity, shopify_id) DO NOTHING";
        on_write!(self, pool => {
            sqlx::query(sql).bind(tenant).bind(pair).bind(entity).bind(shopify_id).bind(d365_key).bind(Utc::now()).execute(pool).await.map(|_| ())
        })?;
        self.link(tenant, pair, entity, shopify_id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// The D365 key a Shopify object was linked to (a link still being created counts as none).
    pub async fn link(
        &self,
        tenant: TenantId,
        pair: PairId,
        entity: &str,
        shopify_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .raw_link(tenant, pair, entity, shopify_id)
            .await?
            .map(|(key, _)| key)
            .filter(|key| !key.starts_with(PENDING)))
    }

    async fn raw_link(
        &self,
        tenant: TenantId,
        pair: PairId,
        entity: &str,
        shopify_id: &str,
    ) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        let sql = "SELECT d365_key, created_at FROM links WHERE tenant_id = $1 AND pair_id = $2 AND entity = $3 AND shopify_id = $4";
        let row: Option<(String, DateTime<Utc>)> = on_pool!(self, pool => {
            sqlx::query_as(sql).bind(tenant).bind(pair).bind(entity).bind(shopify_id).fetch_optional(pool).await
        })?;
        Ok(row)
    }

    /// Reserves the right to create the D365 record for a Shopify object, so that concurrent
    /// runs in any process never create it twice. `owner` names the claimant (a run id); a
    /// claim older than `stale` is taken over (its owner crashed). Made for objects usually
    /// linked already (a returning customer): it reads before it writes.
    pub async fn claim_link(
        &self,
        tenant: TenantId,
        pair: PairId,
        entity: &str,
        shopify_id: &str,
        owner: &str,
        stale: Duration,
    ) -> Result<LinkClaim, StoreError> {
        let link = LinkKey {
            tenant,
            pair,
            entity,
            shopify_id,
        };
        self.claim(&link, owner, stale, false).await
    }

    /// [`Store::claim_link`] for objects usually not linked yet (a new order): it tries to
    /// write the claim first, which saves the read that would find nothing.
    pub async fn claim_new_link(
        &self,
        tenant: TenantId,
        pair: PairId,
        entity: &str,
        shopify_id: &str,
        owner: &str,
        stale: Duration,
    ) -> Result<LinkClaim, StoreError> {
        let link = LinkKey {
            tenant,
            pair,
            entity,
            shopify_id,
        };
        self.claim(&link, owner, stale, true).await
    }

    async fn claim(
        &self,
        link: &LinkKey<'_>,
        owner: &str,
        stale: Duration,
        insert_first: bool,
    ) -> Result<LinkClaim, StoreError> {
        let LinkKey {
            tenant,
            pair,
            entity,
            shopify_id,
        } = *link;
        let mine = format!("{PENDING}{owner}");
        let now = Utc::now();
        let insert = "INSERT INTO links (tenant_id, pair_id, entity, shopify_id, d365_key, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                      ON CONFLICT (pair_id, entity, shopify_id) DO NOTHING";
        let try_insert = || async {
            on_write!(self, pool => {
                sqlx::query(insert).bind(tenant).bind(pair).bind(entity).bind(shopify_id).bind(&mine).bind(now)
                    .execute(pool).await.map(|r| r.rows_affected() == 1)
            })
        };
        if insert_first && try_insert().await? {
            return Ok(LinkClaim::Claimed);
        }
        let existing = match self.raw_link(tenant, pair, entity, shopify_id).await? {
            Some(link) => link,
            None => {
                if !insert_first && try_insert().await? {
                    return Ok(LinkClaim::Claimed);
                }
                // Another run inserted it between our read and our insert, or deleted it
                // (released its claim) between our insert and our read: ask again.
                match self.raw_link(tenant, pair, entity, shopify_id).await? {
                    Some(link) => link,
                    None if try_insert().await? => return Ok(LinkClaim::Claimed),
                    None => return Ok(LinkClaim::Busy),
                }
            }
        };
        let (key, claimed_at) = existing;
        if key == mine {
            return Ok(LinkClaim::Claimed);
        }
        if !key.starts_with(PENDING) {
            return Ok(LinkClaim::Linked(key));
        }
        if claimed_at >= now - stale && self.claim_owner_working(tenant, &key, now).await? {
            return Ok(LinkClaim::Busy);
        }
        let take_over = "UPDATE links SET d365_key = $5, created_at = $6 \
                         WHERE tenant_id = $1 AND pair_id = $2 AND entity = $3 AND shopify_id = $4 AND d365_key = $7";
        let taken = on_write!(self, pool => {
            sqlx::query(take_over).bind(tenant).bind(pair).bind(entity).bind(shopify_id).bind(&mine).bind(now).bind(&key)
                .execute(pool).await.map(|r| r.rows_affected())
        })?;
        Ok(if taken == 1 {
            LinkClaim::Claimed
        } else {
            LinkClaim::Busy
        })
    }

    /// Whether the run named in a claim is still at work on it: running, with a live lease.
    /// Claims by anything but a run are trusted until they go stale.
    async fn claim_owner_working(
        &self,
        tenant: TenantId,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let Some(owner) = key
            .strip_prefix(PENDING)
            .and_then(|owner| owner.parse::<RunId>().ok())
        else {
            return Ok(true);
        };
        let sql = "SELECT COUNT(*) FROM runs WHERE tenant_id = $1 AND id = $2 AND status = 'running' AND lease_until >= $3";
        let working: i64 = on_pool!(self, pool => sqlx::query_scalar(sql).bind(tenant).bind(owner).bind(now).fetch_one(pool).await)?;
        Ok(working > 0)
    }

    /// Completes a claim with the D365 key that was found or created.
    pub async fn complete_link(
        &self,
        tenant: TenantId,
        pair: PairId,
        entity: &str,
        shopify_id: &str,
        owner: &str,
        d365_key: &str,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE links SET d365_key = $5, created_at = $6 \
                   WHERE tenant_id = $1 AND pair_id = $2 AND entity = $3 AND shopify_id = $4 AND d365_key = $7";
        let changed = on_write!(self, pool => {
            sqlx::query(sql).bind(tenant).bind(pair).bind(entity).bind(shopify_id).bind(d365_key).bind(Utc::now())
                .bind(format!("{PENDING}{owner}")).execute(pool).await.map(|r| r.rows_affected())
        })?;
        if changed == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict {
                constraint: "links_claim_lost".into(),
            })
        }
    }

    /// Gives up a claim (creating failed), so another run may try at once.
    pub async fn release_link(
        &self,
        tenant: TenantId,
        pair: PairId,
        entity: &str,
        shopify_id: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        let sql = "DELETE FROM links WHERE tenant_id = $1 AND pair_id = $2 AND entity = $3 AND shopify_id = $4 AND d365_key = $5";
        on_write!(self, pool => {
            sqlx::query(sql).bind(tenant).bind(pair).bind(entity).bind(shopify_id).bind(format!("{PENDING}{owner}"))
                .execute(pool).await.map(|_| ())
        })?;
        Ok(())
    }
}

/// One link's key.
#[derive(Clone, Copy)]
struct LinkKey<'a> {
    tenant: TenantId,
    pair: PairId,
    entity: &'a str,
    shopify_id: &'a str,
}

/// Marks a link row as a claim in progress rather than a D365 key.
const PENDING: &str = "pending:";

/// The answer to [`Store::claim_link`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkClaim {
    /// The object is already linked to this D365 key: nothing to create.
    Linked(String),
    /// The caller holds the claim: look up or create, then complete or release it.
    Claimed,
    /// Another run is creating it right now: try again shortly.
    Busy,
}
