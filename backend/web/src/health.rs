use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::AppState;

/// A dependency that does not answer within this time counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// Liveness: the process runs and serves HTTP.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: every dependency this process needs answers.
async fn readyz(State(state): State<AppState>) -> Response {
    let database = tokio::time::timeout(CHECK_TIMEOUT, state.store.ping());
    let queue = tokio::time::timeout(CHECK_TIMEOUT, state.dispatcher.health());
    let (database, queue) = tokio::join!(database, queue);

    let mut checks = Map::new();
    let mut failing = Vec::new();
    let database_name = match state.store.backend() {
        syncline_store::Backend::Sqlite => "sqlite",
        syncline_store::Backend::Postgres => "postgres",
    };
    let database_status = match database {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness: database check failed");
            failing.push(database_name);
            "unreachable".to_owned()
        }
        Err(_) => {
            failing.push(database_name);
            "timeout".to_owned()
        }
    };
    checks.insert(database_name.to_owned(), Value::String(database_status));

    let queue_name = state.dispatcher.name();
    let queue_status = match queue {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness: queue check failed");
            failing.push(queue_name);
            "unreachable".to_owned()
        }
        Err(_) => {
            failing.push(queue_name);
            "timeout".to_owned()
        }
    };
    checks.insert(queue_name.to_owned(), Value::String(queue_status));

    if failing.is_empty() {
        (
            StatusCode::OK,
            Json(json!({ "status": "ready", "checks": checks })),
        )
            .into_response()
    } else {
        let body = json!({ "status": "unavailable", "failing": failing, "checks": checks });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}
