//! The flows: what a worker does with a run. [`FlowEngine`] is the job handler; it claims the
//! run, hands it to its flow, turns the flow's classified error into a decision (retry with
//! backoff, dead letter, pause the pair) and records the attempt.

mod clients;
mod orders;
pub(crate) mod redact;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use syncline_core::mapping::CompiledMapping;
use syncline_core::templates::Flow;
use syncline_d365::batch::{Batch, BatchResponse};
use syncline_d365::{D365Error, ODataClient, Query};
use syncline_store::{
    BillableEvent, NewAuditEntry, PairId, PairStatus, Run, RunContext, RunId, RunOutcome,
    RunStatus, Store, StoreError, TenantId,
};

pub use clients::{D365Clients, d365_config, secret_name};

use crate::retry::{Decision, Failure, RetryPolicy};
use crate::workers::{HandlerError, JobHandler};
use crate::{Dispatcher, RateLimit, RateLimiter};

/// Why a flow did not finish, classified so the retry policy can decide.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// Network, timeout, 5xx: try again with backoff.
    #[error("{0}")]
    Transient(String),
    /// The partner asked us to slow down.
    #[error("{message}")]
    Throttled {
        /// The partner's `Retry-After`.
        retry_after: Option<Duration>,
        /// What happened.
        message: String,
    },
    /// Another run is creating the same record right now: try again shortly.
    #[error("{0}")]
    Busy(String),
    /// Validation, mapping or data error: retrying cannot help.
    #[error("{0}")]
    Permanent(String),
    /// Credentials refused: the pair must be paused.
    #[error("{0}")]
    Auth(String),
    /// Our own database failed.
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

impl From<D365Error> for FlowError {
    fn from(error: D365Error) -> Self {
        match error {
            D365Error::Throttled { retry_after } => FlowError::Throttled {
                retry_after: Some(retry_after),
                message: error.to_string(),
            },
            D365Error::Transient { .. } => FlowError::Transient(error.to_string()),
            D365Error::Unauthorized { .. } | D365Error::Config(_) => {
                FlowError::Auth(error.to_string())
            }
            D365Error::NotFound(_) | D365Error::Permanent { .. } | D365Error::Invalid(_) => {
                FlowError::Permanent(error.to_string())
            }
        }
    }
}

impl FlowError {
    fn class(&self) -> &'static str {
        match self {
            FlowError::Transient(_) | FlowError::Store(_) | FlowError::Busy(_) => "transient",
            FlowError::Throttled { .. } => "throttled",
            FlowError::Permanent(_) => "permanent",
            FlowError::Auth(_) => "auth",
        }
    }

    fn failure(&self) -> Failure {
        match self {
            FlowError::Transient(_) | FlowError::Store(_) => Failure::Transient,
            FlowError::Busy(_) => Failure::Throttled {
                retry_after: Some(Duration::from_secs(2)),
            },
            FlowError::Throttled { retry_after, .. } => Failure::Throttled {
                retry_after: *retry_after,
            },
            FlowError::Permanent(message) => Failure::Permanent(message.clone()),
            FlowError::Auth(message) => Failure::Auth(message.clone()),
        }
    }
}

/// What a successful run leaves behind.
#[derive(Debug, Clone)]
pub struct FlowSuccess {
    /// The D365 key created or found (sales order number).
    pub d365_ref: Option<String>,
    /// The records written (redacted before storing).
    pub output: Value,
    /// What was done, in plain words.
    pub note: String,
    /// The billable transaction this success is, if any (an order created, updated or
    /// cancelled); `None` when nothing changed in the target.
    pub billable: Option<Billable>,
}

/// A billable transaction: one record synced by one action. Metered once per (pair, flow,
/// action, record id), so retries, replays and duplicated webhooks never count twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Billable {
    /// e.g. `create`, `update`, `cancel`.
    pub action: &'static str,
    /// The source record (with its version for updates).
    pub record_id: String,
}

/// Settings of the flow engine.
#[derive(Debug, Clone)]
pub struct FlowOptions {
    /// How long a claimed run belongs to its worker before another may take it over.
    pub lease: Duration,
    /// Retries and dead letters.
    pub retry: RetryPolicy,
    /// Requests per second allowed to each D365 connection (shared by all workers); D365's
    /// `Retry-After` pauses everyone on top of it.
    pub d365_limit: RateLimit,
}

impl Default for FlowOptions {
    fn default() -> Self {
        FlowOptions {
            lease: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            // A connection that states no budget (`requests_per_5_minutes`) is only kept
            // from bursting absurdly: D365's service protection answers 429 with Retry-After,
            // which every worker then honours. The former 1,000 operations/s, at four or five
            // operations per order, capped a pair at about 200 orders/s.
            d365_limit: RateLimit {
                capacity: 10_000,
                refill_per_second: 10_000.0,
            },
        }
    }
}

/// Runs the flows; the handler of `run` and `route` jobs.
pub struct FlowEngine {
    store: Store,
    dispatcher: Arc<dyn Dispatcher>,
    limiter: Arc<dyn RateLimiter>,
    options: FlowOptions,
    d365: D365Clients,
    orders_mapping: Arc<CompiledMapping>,
    /// Compiled published mappings by (pair, flow): the version tells when to recompile.
    published: std::sync::Mutex<HashMap<(PairId, String), PublishedMapping>>,
    /// Partner calls of finished attempts, written by the runtime's flusher.
    pub(crate) api_calls: Arc<crate::meter::ApiCallMeter>,
}

/// The version name runs record while the pair uses the built-in template.
const DEFAULT_MAPPING_VERSION: &str = "default";

/// A published version number and its compiled form.
type PublishedMapping = (i64, Arc<CompiledMapping>);

/// The mapping a run applies, and the version label it records.
pub(crate) struct ActiveMapping {
    pub compiled: Arc<CompiledMapping>,
    pub label: String,
}

impl FlowEngine {
    /// An engine over the store, dispatching follow-up work through `dispatcher`.
    pub fn new(
        store: Store,
        dispatcher: Arc<dyn Dispatcher>,
        limiter: Arc<dyn RateLimiter>,
        options: FlowOptions,
    ) -> Result<Self, syncline_core::templates::TemplateError> {
        let orders_mapping = Arc::new(Flow::Orders.compile_default()?);
        Ok(FlowEngine {
            store,
            dispatcher,
            limiter,
            options,
            d365: D365Clients::default(),
            orders_mapping,
            published: std::sync::Mutex::default(),
            api_calls: Arc::default(),
        })
    }

    /// The pair's published mapping of a flow, or the default template when none was published.
    async fn mapping_for(
        &self,
        pair: &syncline_store::Pair,
        flow: Flow,
        published: Option<i64>,
    ) -> Result<ActiveMapping, FlowError> {
        let tenant = pair.tenant_id;
        let Some(version) = published else {
            return Ok(ActiveMapping {
                compiled: Arc::clone(&self.orders_mapping),
                label: DEFAULT_MAPPING_VERSION.to_owned(),
            });
        };
        let key = (pair.id, flow.name().to_owned());
        let cached = self.published.lock().ok().and_then(|cache| {
            cache
                .get(&key)
                .filter(|(v, _)| *v == version)
                .map(|(_, m)| Arc::clone(m))
        });
        let label = format!("v{version}");
        if let Some(compiled) = cached {
            return Ok(ActiveMapping { compiled, label });
        }
        let published = self
            .store
            .mapping_version(tenant, pair.id, flow.name(), version)
            .await?
            .ok_or_else(|| FlowError::Permanent(format!("mapping {label} disappeared")))?;
        let compiled = compile_document(flow, &published.document)
            .map(Arc::new)
            .map_err(|why| {
                FlowError::Permanent(format!(
                    "the published mapping {label} does not compile: {why}"
                ))
            })?;
        if let Ok(mut cache) = self.published.lock() {
            cache.insert(key, (version, Arc::clone(&compiled)));
        }
        Ok(ActiveMapping { compiled, label })
    }

    /// Processes one run: claims it, runs its flow, records the outcome.
    pub async fn process_run(&self, tenant: TenantId, id: RunId) -> Result<(), FlowError> {
        // Whether the run is still due is decided by the claim below.
        let Some(context) = self.store.run_context(tenant, id).await? else {
            return Ok(());
        };
        let RunContext {
            pair,
            hold,
            mapping_version,
            event,
            d365,
        } = context;
        if pair.status != PairStatus::Active || hold.is_some() {
            // Held, not lost: the run stays due and the sweeper offers it again later.
            tracing::debug!(run_id = %id, reason = hold.unwrap_or("pair not active"), "run held");
            return Ok(());
        }
        let penalty = self
            .limiter
            .penalty(&d365_key(pair.d365_connection_id))
            .await
            .unwrap_or_default();
        if penalty > MAX_WAIT_IN_WORKER {
            // D365 asked for a pause: claiming now would only spend an attempt. The run stays
            // due and is offered again after the pause.
            tracing::debug!(run_id = %id, ?penalty, "run deferred: D365 asked for a pause");
            let dispatcher = Arc::clone(&self.dispatcher);
            let job = crate::routing::run_job(tenant, id);
            // Offered again right when the pause ends; should this process die first, the
            // sweeper offers it later.
            tokio::spawn(async move {
                tokio::time::sleep(penalty).await;
                if let Err(error) = dispatcher.enqueue(job).await {
                    tracing::warn!(%error, "re-offering a deferred run failed; the sweeper will");
                }
            });
            return Ok(());
        }
        let lease = chrono::Duration::from_std(self.options.lease)
            .unwrap_or_else(|_| chrono::Duration::seconds(120));
        let Some(run) = self.store.claim_run(tenant, id, lease).await? else {
            return Ok(());
        };
        // Partner API calls of this attempt, counted in memory and added to the pair's day by
        // the meter (fair use: cheap, and failed attempts count too, as they used the budget).
        let calls = AtomicU64::new(0);
        let (result, label) = match run.flow.as_str() {
            "orders" => match self.mapping_for(&pair, Flow::Orders, mapping_version).await {
                Ok(mapping) => {
                    let input = orders::Input {
                        run: &run,
                        pair: &pair,
                        event,
                        d365: &d365,
                    };
                    (
                        orders::process(self, input, &mapping, &calls).await,
                        Some(mapping.label),
                    )
                }
                Err(error) => (Err(error), None),
            },
            other => (
                Err(FlowError::Permanent(format!("no flow named {other}"))),
                None,
            ),
        };
        let billable = result.as_ref().ok().and_then(|s| s.billable.clone());
        // No input snapshot is written: the event's payload is the input, and readers mask
        // it when they show it (`input_snapshot`). Storing a masked copy per run cost a
        // tenth of the database's work.
        let outcome = self.outcome(&run, &pair, result, label).await;
        let now = chrono::Utc::now();
        // Metered with the run's finish: a retry, a replay or a duplicated webhook of the same
        // sync finds its key counted. Exactly once.
        let billable = match (outcome.status, &billable) {
            (RunStatus::Succeeded, Some(billable)) => Some(BillableEvent {
                pair_id: pair.id,
                flow: &run.flow,
                action: billable.action,
                record_id: &billable.record_id,
                run_id: run.id,
                at: now,
            }),
            _ => None,
        };
        let calls = i64::try_from(calls.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
        self.api_calls.add(tenant, pair.id, now.date_naive(), calls);
        let counted = self
            .store
            .finish_run_billed(tenant, run.id, &outcome, billable.as_ref())
            .await?;
        if let Some(billable) = &billable {
            tracing::debug!(run_id = %run.id, action = billable.action, counted, "billable transaction");
        }
        crate::metrics::record_run(&run, &outcome);
        Ok(())
    }

    async fn outcome(
        &self,
        run: &Run,
        pair: &syncline_store::Pair,
        result: Result<FlowSuccess, FlowError>,
        mapping_version: Option<String>,
    ) -> RunOutcome {
        let error = match result {
            Ok(mut success) => {
                redact::mask_personal(&mut success.output);
                tracing::info!(run_id = %run.id, d365_ref = success.d365_ref.as_deref().unwrap_or(""), note = %success.note, "run succeeded");
                return RunOutcome {
                    status: RunStatus::Succeeded,
                    next_attempt_at: None,
                    error: None,
                    error_class: None,
                    d365_ref: success.d365_ref,
                    output_snapshot: Some(json!({
                        "note": success.note,
                        "records": success.output,
                    })),
                    mapping_version,
                    input_snapshot: None,
                };
            }
            Err(error) => error,
        };
        if let FlowError::Throttled {
            retry_after: Some(wait),
            ..
        } = &error
            && let Err(limiter_error) = self
                .limiter
                .penalize(&d365_key(pair.d365_connection_id), *wait)
                .await
        {
            tracing::warn!(%limiter_error, "could not share D365's Retry-After with other workers");
        }
        let attempts = u32::try_from(run.attempts).unwrap_or(u32::MAX);
        let decision = if matches!(error, FlowError::Busy(_)) {
            // Waiting for another run's claim is not a failure of this one: it never uses up
            // attempts (a claim whose owner died is taken over, so the wait is bounded).
            let jitter = Duration::from_millis(rand::random_range(0..1000));
            Decision::RetryAfter(Duration::from_secs(2) + jitter)
        } else {
            self.options.retry.decide(attempts, &error.failure())
        };
        let class = error.class().to_owned();
        let message = error.to_string();
        let (status, next_attempt_at, text) = match decision {
            Decision::RetryAfter(delay) => {
                tracing::warn!(run_id = %run.id, %message, ?delay, "run failed; retrying");
                (
                    RunStatus::Retrying,
                    Some(
                        chrono::Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default(),
                    ),
                    message,
                )
            }
            Decision::DeadLetter(reason) => {
                tracing::error!(run_id = %run.id, %reason, "run dead-lettered");
                let text = if matches!(error, FlowError::Permanent(_)) {
                    reason
                } else {
                    format!("{reason}; last error: {message}")
                };
                (RunStatus::Dead, None, text)
            }
            Decision::PausePair(reason) => {
                self.pause_pair(pair, &reason).await;
                self.d365.forget(pair.d365_connection_id);
                // The run waits for the pair: it is retried once someone fixes the credentials
                // and activates the pair again.
                (
                    RunStatus::Retrying,
                    Some(chrono::Utc::now() + chrono::Duration::seconds(60)),
                    reason,
                )
            }
        };
        RunOutcome {
            status,
            next_attempt_at,
            error: Some(text),
            error_class: Some(class),
            d365_ref: None,
            output_snapshot: None,
            mapping_version,
            input_snapshot: None,
        }
    }

    async fn pause_pair(&self, pair: &syncline_store::Pair, reason: &str) {
        let why = format!("D365 refused the credentials: {reason}");
        if let Err(error) = self
            .store
            .set_pair_status(pair.tenant_id, pair.id, PairStatus::Paused, Some(&why))
            .await
        {
            tracing::error!(%error, pair_id = %pair.id, "pausing the pair failed");
            return;
        }
        tracing::warn!(pair_id = %pair.id, %why, "pair paused");
        let entry = NewAuditEntry {
            tenant_id: Some(pair.tenant_id),
            actor: "system".into(),
            action: "pair.paused".into(),
            detail: json!({ "pair_id": pair.id, "reason": why }),
        };
        if let Err(error) = self.store.audit(&entry).await {
            tracing::error!(%error, "writing the audit row failed");
        }
    }

    /// A rate-limited D365 session for a connection.
    async fn d365_session<'a>(
        &'a self,
        connection: &syncline_store::Connection,
        calls: &'a AtomicU64,
    ) -> Result<D365Session<'a>, FlowError> {
        let client = self.d365.get(&self.store, connection).await?;
        let key = d365_key(connection.id);
        let limit = connection
            .settings
            .get("requests_per_5_minutes")
            .and_then(serde_json::Value::as_u64)
            .filter(|budget| *budget > 0)
            .map_or(self.options.d365_limit, budget_limit);
        if let Err(error) = self.limiter.set_limit(&key, limit) {
            tracing::warn!(%error, "ignoring an unusable D365 request budget");
        }
        Ok(D365Session {
            client,
            limiter: self.limiter.as_ref(),
            key,
            calls,
        })
    }
}

/// The limiter setting for a D365 request budget per 5-minute sliding window (F&O's
/// service protection: 6,000 requests per user per web server by default, per
/// learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/priority-based-throttling).
/// A small burst and 95% of the budget's rate keep any 5-minute window under the budget, so
/// 429s stay rare while the budget is nearly used up.
fn budget_limit(budget: u64) -> RateLimit {
    let per_second = budget as f64 / 300.0;
    RateLimit {
        capacity: u32::try_from((budget / 150).max(1)).unwrap_or(u32::MAX),
        refill_per_second: per_second * 0.95,
    }
}

fn d365_key(connection: syncline_store::ConnectionId) -> String {
    format!("d365:{connection}")
}

/// The longest a worker sleeps for a connection's rate limit before handing the run back.
const MAX_WAIT_IN_WORKER: Duration = Duration::from_secs(5);

/// One connection's OData client behind the shared rate limiter.
struct D365Session<'a> {
    client: Arc<ODataClient>,
    limiter: &'a dyn RateLimiter,
    key: String,
    /// Partner requests made through this session (a `$batch` counts its operations).
    calls: &'a AtomicU64,
}

impl D365Session<'_> {
    /// Waits for `cost` requests' worth of the connection's budget (a `$batch` costs one per
    /// operation, as F&O counts them).
    async fn admit_cost(&self, cost: u32) -> Result<(), FlowError> {
        let paused = |left: Duration| FlowError::Throttled {
            retry_after: Some(left),
            message: format!(
                "D365 asked us to pause this connection for {} s more",
                left.as_secs()
            ),
        };
        let limiter_error = |error| match error {
            crate::LimiterError::Paused { left } => paused(left),
            other => FlowError::Transient(format!("rate limiter: {other}")),
        };
        let waiting = std::time::Instant::now();
        // Sleeping through a long Retry-After would hold a worker that other pairs need: the
        // limiter refuses instead, and the run goes back to the schedule.
        let acquired = self
            .limiter
            .acquire_unless_paused(&self.key, cost.max(1), MAX_WAIT_IN_WORKER)
            .await;
        crate::metrics::metrics().limiter_waited("d365", waiting.elapsed());
        let admitted = match acquired {
            Ok(_) => Ok(()),
            // A batch bigger than the burst allowance: take it in steps of the allowance.
            Err(crate::LimiterError::CostExceedsCapacity { capacity, .. }) => {
                let mut left = cost;
                while left > 0 {
                    let step = left.min(capacity.max(1));
                    self.limiter
                        .acquire_unless_paused(&self.key, step, MAX_WAIT_IN_WORKER)
                        .await
                        .map_err(limiter_error)?;
                    left -= step;
                }
                Ok(())
            }
            Err(error) => Err(limiter_error(error)),
        };
        if admitted.is_ok() {
            self.calls
                .fetch_add(u64::from(cost.max(1)), Ordering::Relaxed);
        }
        admitted
    }

    async fn admit(&self) -> Result<(), FlowError> {
        self.admit_cost(1).await
    }

    async fn query(&self, query: &Query) -> Result<Vec<Value>, FlowError> {
        self.admit().await?;
        Ok(crate::metrics::observe_d365(
            self.client.query(query).await,
        )?)
    }

    async fn create(&self, entity_set: &str, body: &Value) -> Result<Value, FlowError> {
        self.admit().await?;
        Ok(crate::metrics::observe_d365(
            self.client.create(entity_set, body).await,
        )?)
    }

    async fn patch(
        &self,
        entity_set: &str,
        key: &syncline_d365::odata::Key,
        body: &Value,
    ) -> Result<(), FlowError> {
        self.admit().await?;
        Ok(crate::metrics::observe_d365(
            self.client.patch(entity_set, key, body).await,
        )?)
    }

    /// Deletes; `false` when the record was already gone.
    async fn delete(
        &self,
        entity_set: &str,
        key: &syncline_d365::odata::Key,
    ) -> Result<bool, FlowError> {
        self.admit().await?;
        match crate::metrics::observe_d365(self.client.delete(entity_set, key).await) {
            Ok(()) => Ok(true),
            Err(D365Error::NotFound(_)) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    async fn batch(&self, batch: &Batch) -> Result<BatchResponse, FlowError> {
        self.admit_cost(u32::try_from(batch.len()).unwrap_or(u32::MAX))
            .await?;
        Ok(crate::metrics::observe_d365(
            self.client.batch(batch).await,
        )?)
    }
}

impl JobHandler for FlowEngine {
    fn handle<'a>(&'a self, job: &'a crate::Job) -> BoxFuture<'a, Result<(), HandlerError>> {
        async move {
            let tenant: TenantId = job
                .tenant
                .as_deref()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| HandlerError::Permanent(format!("job {} has no tenant", job.id)))?;
            let result = match job.kind.as_str() {
                "run" => {
                    let id: RunId = job.id.parse().map_err(|_| {
                        HandlerError::Permanent(format!("{} is not a run id", job.id))
                    })?;
                    self.process_run(tenant, id).await
                }
                "route" => {
                    let id = job.id.parse().map_err(|_| {
                        HandlerError::Permanent(format!("{} is not an event id", job.id))
                    })?;
                    crate::routing::route_event(&self.store, self.dispatcher.as_ref(), tenant, id)
                        .await
                        .map(|_| ())
                        .map_err(FlowError::Store)
                }
                other => return Err(HandlerError::Permanent(format!("unknown job kind {other}"))),
            };
            result.map_err(|error| HandlerError::Transient(error.to_string()))
        }
        .boxed()
    }
}

/// Compiles a stored mapping document against the flow's schemas; the reasons joined.
fn compile_document(flow: Flow, document: &Value) -> Result<CompiledMapping, String> {
    let doc: syncline_core::mapping::MappingDocument = serde_json::from_value(document.clone())
        .map_err(|e| format!("not a mapping document: {e}"))?;
    flow.compile_document(&doc).map_err(|error| match error {
        syncline_core::templates::TemplateError::Compile(errors) => errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    })
}
