//! Process metrics in the Prometheus text format, for `/metrics`.
//!
//! Labels are bounded by construction: matched route templates (never raw URIs), flow names
//! from a fixed list, outcomes and partners from enums. Tenant ids, shop domains and pair
//! names never become labels; per-tenant figures come from the database instead.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric of this process, registered in one registry.
pub struct Metrics {
    registry: Registry,
    /// HTTP requests by matched route, method and status class.
    pub http_requests: IntCounterVec,
    /// HTTP request latency by matched route.
    pub http_duration: HistogramVec,
    /// Runs that finished an attempt, by flow and outcome.
    pub runs: IntCounterVec,
    /// From event creation to a final outcome (succeeded, failed, dead), by flow.
    pub run_latency: HistogramVec,
    /// Attempts scheduled for a retry, by flow and error class.
    pub retries: IntCounterVec,
    /// Runs dead-lettered, by flow.
    pub dead_letters: IntCounterVec,
    /// Requests to partners, by partner and outcome (`ok`, `throttled`, `error`).
    pub partner_requests: IntCounterVec,
    /// API cost points partners charged, by partner (Shopify's GraphQL `actualQueryCost`).
    pub partner_cost: IntCounterVec,
    /// Time spent waiting for a partner's rate limiter.
    pub limiter_wait: HistogramVec,
    /// Runs in the database by status (set at scrape time).
    pub queue_depth: IntGaugeVec,
    /// Age of the oldest waiting run by status, in seconds (set at scrape time).
    pub queue_oldest_age: IntGaugeVec,
    /// Alert notifications by channel kind, event and outcome.
    pub notifications: IntCounterVec,
    /// Access tokens fetched from partners' sign-in endpoints, by partner.
    pub token_refreshes: IntCounterVec,
}

/// Flows a label may name; anything else is reported as `other`.
const FLOWS: &[&str] = &[
    "orders",
    "customers",
    "products",
    "inventory",
    "fulfillments",
    "refunds",
    "payments",
];

/// The label for a flow name (bounded).
pub fn flow_label(flow: &str) -> &'static str {
    FLOWS
        .iter()
        .find(|f| **f == flow)
        .copied()
        .unwrap_or("other")
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("static metric definition {name}: {e}"));
    // Registration fails only for duplicate names, which the one static registry rules out.
    let _ = registry.register(Box::new(metric.clone()));
    metric
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> HistogramVec {
    let metric = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .unwrap_or_else(|e| unreachable!("static metric definition {name}: {e}"));
    let _ = registry.register(Box::new(metric.clone()));
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("static metric definition {name}: {e}"));
    let _ = registry.register(Box::new(metric.clone()));
    metric
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let r = Registry::new();
    let fast = vec![
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ];
    let slow = vec![
        0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
    ];
    Metrics {
        http_requests: counter(
            &r,
            "syncline_http_requests_total",
            "HTTP requests by matched route, method and status class.",
            &["route", "method", "status"],
        ),
        http_duration: histogram(
            &r,
            "syncline_http_request_duration_seconds",
            "HTTP request latency by matched route.",
            &["route"],
            fast.clone(),
        ),
        runs: counter(
            &r,
            "syncline_runs_total",
            "Run attempts finished, by flow and outcome.",
            &["flow", "outcome"],
        ),
        run_latency: histogram(
            &r,
            "syncline_run_latency_seconds",
            "From event to final outcome, by flow.",
            &["flow", "outcome"],
            slow,
        ),
        retries: counter(
            &r,
            "syncline_run_retries_total",
            "Attempts scheduled for a retry, by flow and error class.",
            &["flow", "class"],
        ),
        dead_letters: counter(
            &r,
            "syncline_dead_letters_total",
            "Runs dead-lettered, by flow.",
            &["flow"],
        ),
        partner_requests: counter(
            &r,
            "syncline_partner_requests_total",
            "Requests to partners by partner and outcome (ok, throttled, error).",
            &["partner", "outcome"],
        ),
        partner_cost: counter(
            &r,
            "syncline_partner_cost_points_total",
            "API cost points charged by partners (Shopify GraphQL actualQueryCost), by partner.",
            &["partner"],
        ),
        limiter_wait: histogram(
            &r,
            "syncline_limiter_wait_seconds",
            "Time spent waiting for a partner's rate limiter.",
            &["partner"],
            fast,
        ),
        queue_depth: gauge(
            &r,
            "syncline_queue_runs",
            "Runs waiting or in progress, by status (read from the database at scrape time).",
            &["status"],
        ),
        queue_oldest_age: gauge(
            &r,
            "syncline_queue_oldest_age_seconds",
            "Age of the oldest run in each waiting status (read from the database at scrape time).",
            &["status"],
        ),
        notifications: counter(
            &r,
            "syncline_alert_notifications_total",
            "Alert notifications by channel kind, event and outcome.",
            &["channel", "event", "outcome"],
        ),
        token_refreshes: counter(
            &r,
            "syncline_token_refreshes_total",
            "Access tokens fetched from partners' sign-in endpoints, by partner.",
            &["partner"],
        ),
        registry: r,
    }
});

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    /// Records one partner request and its outcome.
    pub fn partner(&self, partner: &'static str, outcome: &'static str) {
        self.partner_requests
            .with_label_values(&[partner, outcome])
            .inc();
    }

    /// Records time spent waiting for a partner's limiter.
    pub fn limiter_waited(&self, partner: &'static str, waited: Duration) {
        self.limiter_wait
            .with_label_values(&[partner])
            .observe(waited.as_secs_f64());
    }

    /// Every metric in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        // The D365 connector counts its sign-ins itself (it knows nothing of metrics): catch
        // the counter up to it.
        catch_up(
            &self.token_refreshes.with_label_values(&["d365"]),
            syncline_d365::auth::token_fetches_total(),
        );
        // So does the Shopify connector with its Admin API requests and their cost.
        let shopify = syncline_shopify::client::call_stats();
        for (outcome, total) in [
            ("ok", shopify.ok),
            ("throttled", shopify.throttled),
            ("error", shopify.error),
        ] {
            catch_up(
                &self
                    .partner_requests
                    .with_label_values(&["shopify", outcome]),
                total,
            );
        }
        catch_up(
            &self.partner_cost.with_label_values(&["shopify"]),
            shopify.cost_points,
        );
        let mut out = Vec::new();
        // Encoding text into a Vec cannot fail on I/O; a failure would only drop the output.
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(%error, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Raises a counter to a total kept elsewhere (counters only go up).
fn catch_up(counter: &prometheus::IntCounter, total: u64) {
    let current = counter.get();
    if total > current {
        counter.inc_by(total - current);
    }
}

/// Records how a run's attempt ended: its outcome, a retry or dead letter, and for final
/// outcomes the time since the event's run was created.
pub fn record_run(run: &syncline_store::Run, outcome: &syncline_store::RunOutcome) {
    use syncline_store::RunStatus;
    let m = metrics();
    let flow = flow_label(&run.flow);
    let status = outcome.status.as_str();
    m.runs.with_label_values(&[flow, status]).inc();
    match outcome.status {
        RunStatus::Retrying => {
            let class = match outcome.error_class.as_deref() {
                Some("transient") => "transient",
                Some("throttled") => "throttled",
                Some("auth") => "auth",
                _ => "other",
            };
            m.retries.with_label_values(&[flow, class]).inc();
        }
        RunStatus::Dead => m.dead_letters.with_label_values(&[flow]).inc(),
        _ => {}
    }
    if matches!(
        outcome.status,
        RunStatus::Succeeded | RunStatus::Failed | RunStatus::Dead
    ) {
        let seconds = (chrono::Utc::now() - run.created_at)
            .num_milliseconds()
            .max(0) as f64
            / 1000.0;
        m.run_latency
            .with_label_values(&[flow, status])
            .observe(seconds);
    }
}

/// Records a D365 request's outcome and passes the result on.
pub fn observe_d365<T>(
    result: Result<T, syncline_d365::D365Error>,
) -> Result<T, syncline_d365::D365Error> {
    let outcome = match &result {
        Ok(_) => "ok",
        Err(syncline_d365::D365Error::Throttled { .. }) => "throttled",
        Err(_) => "error",
    };
    metrics().partner("d365", outcome);
    result
}
