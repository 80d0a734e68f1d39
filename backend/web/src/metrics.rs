//! `GET /metrics` (Prometheus text format) and the middleware that counts and times every
//! request by its matched route. Queue figures are read from the database at scrape time, so
//! every process reports the same, cluster-wide queue.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use syncline_runner::metrics::metrics;
use syncline_store::RunStatus;

use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(State(state): State<AppState>) -> Response {
    let m = metrics();
    match state.store.queue_stats().await {
        Ok(stats) => {
            let now = chrono::Utc::now();
            for status in [RunStatus::Queued, RunStatus::Running, RunStatus::Retrying] {
                let (count, oldest) = stats
                    .iter()
                    .find(|(s, ..)| *s == status)
                    .map_or((0, None), |(_, count, oldest)| (*count, *oldest));
                m.queue_depth
                    .with_label_values(&[status.as_str()])
                    .set(count);
                m.queue_oldest_age
                    .with_label_values(&[status.as_str()])
                    .set(oldest.map_or(0, |at| (now - at).num_seconds().max(0)));
            }
        }
        // The process metrics are still worth serving; the queue gauges keep their last value.
        Err(error) => tracing::warn!(%error, "reading queue figures for /metrics failed"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.render(),
    )
        .into_response()
}

/// Counts and times each request by matched route (never the raw path, whose ids would make
/// the label set unbounded), method and status class.
pub(crate) async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        // `{id}` becomes `:id`: braces inside label values are valid Prometheus text, but
        // several widely used parsers (prometheus-parse among them) cut a sample at the first `}`.
        .map_or_else(
            || "unmatched".to_owned(),
            |p| p.as_str().replace('{', ":").replace('}', ""),
        );
    let method = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let status = match response.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let m = metrics();
    m.http_requests
        .with_label_values(&[route.as_str(), method, status])
        .inc();
    m.http_duration
        .with_label_values(&[route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}
