//! `POST /hooks/shopify/{connection}`: the durable webhook intake. A delivery is verified
//! (HMAC over the raw body, constant time, previous secret accepted for an hour after a
//! rotation), stored once per (connection, webhook id), and only then acknowledged.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use secrecy::ExposeSecret;
use serde_json::json;
use syncline_shopify::webhook::{SigningSecret, WebhookHeaders, WebhookSecrets};
use syncline_store::{
    Connection, ConnectionId, ConnectionKind, InboxInsert, InboxStatus, IntakeEvent, IntakeRoutes,
    IntakeStored, NewInboxEvent,
};

use crate::accounts::audit;
use crate::connections::secret_name;
use crate::{AppError, AppState};

/// Largest body accepted; Shopify's payloads are far smaller.
pub const MAX_WEBHOOK_BYTES: usize = 2 * 1024 * 1024;
/// How long a replaced signing secret still verifies (Shopify may sign with it for an hour).
pub const ROTATION_GRACE: chrono::Duration = chrono::Duration::hours(1);
/// How long decrypted signing secrets stay cached; decrypting per delivery would flood the
/// audit log with decrypt rows.
const SECRET_CACHE_TTL: Duration = Duration::from_secs(60);

/// Decrypted signing secrets by connection, briefly.
#[derive(Default)]
pub struct SecretCache {
    entries: Mutex<HashMap<ConnectionId, (WebhookSecrets, Instant)>>,
}

impl SecretCache {
    /// Forgets a connection's secrets (after they changed).
    pub fn invalidate(&self, connection: ConnectionId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&connection);
        }
    }

    fn get(&self, connection: ConnectionId) -> Option<WebhookSecrets> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(&connection)
            .filter(|(_, at)| at.elapsed() < SECRET_CACHE_TTL)
            .map(|(secrets, _)| secrets.clone())
    }

    fn put(&self, connection: ConnectionId, secrets: WebhookSecrets) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(connection, (secrets, Instant::now()));
        }
    }
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/hooks/shopify/{connection}", post(receive))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BYTES))
}

async fn signing_secrets(
    state: &AppState,
    connection: &Connection,
) -> Result<WebhookSecrets, AppError> {
    if let Some(cached) = state.webhook_secrets.get(connection.id) {
        return Ok(cached);
    }
    let tenant = connection.tenant_id;
    let current = state
        .store
        .reveal_secret(
            tenant,
            &secret_name(connection.id, "api_secret"),
            "system",
            "webhook verification",
        )
        .await?;
    let mut secrets = WebhookSecrets::new(SigningSecret::new(
        current.expose_secret().as_bytes().to_vec(),
    ));
    let previous_name = secret_name(connection.id, "api_secret_previous");
    if let Some(meta) = state.store.secret_meta(tenant, &previous_name).await? {
        let until = meta.updated_at + ROTATION_GRACE;
        if until > Utc::now() {
            let previous = state
                .store
                .reveal_secret(tenant, &previous_name, "system", "webhook verification")
                .await?;
            secrets.previous = Some(SigningSecret::new(
                previous.expose_secret().as_bytes().to_vec(),
            ));
            secrets.previous_valid_until = Some(until);
        }
    }
    state.webhook_secrets.put(connection.id, secrets.clone());
    Ok(secrets)
}

fn plain(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

async fn receive(
    State(state): State<AppState>,
    Path(connection): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(connection_id) = connection.parse::<ConnectionId>() else {
        return plain(StatusCode::NOT_FOUND, "unknown endpoint");
    };
    // The routes come with the connection, in one query; they are used only once the
    // signature has been verified.
    let (connection, routes) = match state.intake_store.webhook_target(connection_id).await {
        Ok(Some(target)) if target.connection.kind == ConnectionKind::Shopify => {
            (target.connection, target.routes)
        }
        Ok(_) => return plain(StatusCode::NOT_FOUND, "unknown endpoint"),
        Err(error) => return AppError::from(error).into_response(),
    };
    let tenant = connection.tenant_id;
    let pairs = headers
        .iter()
        .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str(), v)));
    let delivery = match WebhookHeaders::from_pairs(pairs) {
        Ok(delivery) => delivery,
        Err(error) => {
            audit(
                &state.store,
                Some(tenant),
                "shopify",
                "webhook.rejected",
                json!({ "connection_id": connection.id, "reason": error.to_string() }),
            )
            .await;
            return plain(StatusCode::UNAUTHORIZED, &error.to_string());
        }
    };
    let secrets = match signing_secrets(&state, &connection).await {
        Ok(secrets) => secrets,
        Err(error) => return error.into_response(),
    };
    if secrets.verify(&body, &delivery.hmac, Utc::now()).is_err() {
        // Nothing is stored: only Shopify, holding the secret, can make us store something.
        tracing::warn!(connection_id = %connection.id, topic = %delivery.topic, "webhook with a bad signature refused");
        audit(&state.store, Some(tenant), "shopify", "webhook.rejected", json!({ "connection_id": connection.id, "reason": "bad signature", "webhook_id": delivery.webhook_id })).await;
        return plain(StatusCode::UNAUTHORIZED, "invalid signature");
    }

    if crate::privacy::PRIVACY_TOPICS.contains(&delivery.topic.as_str()) {
        return receive_privacy_request(&state, &connection, &routes, &delivery, body).await;
    }
    // Routed here, stored with its runs in one transaction: a crash cannot leave it between.
    let plan = syncline_runner::plan_route(&delivery.topic, &body, &routes);
    let event = IntakeEvent {
        tenant,
        event: new_event(
            &connection,
            &delivery,
            body.to_vec(),
            plan.status,
            plan.note,
        ),
        runs: plan.runs,
    };
    match state.intake_store.store_event(event).await {
        Ok(IntakeStored::Stored { inbox_id, runs }) => {
            tracing::info!(tenant_id = %tenant, %inbox_id, topic = %delivery.topic, status = plan.status.as_str(), runs = runs.len(), "webhook stored");
            if !runs.is_empty() {
                // Stored is what Shopify waits for; the hand-off to the workers does not hold
                // up the answer. Should it fail, the sweeper hands the runs out shortly.
                let dispatcher = std::sync::Arc::clone(&state.dispatcher);
                tokio::spawn(async move {
                    for run in runs {
                        if let Err(error) = dispatcher
                            .enqueue(syncline_runner::run_job(tenant, run))
                            .await
                        {
                            tracing::warn!(%error, run_id = %run, "dispatching a new run failed; the sweeper will hand it out");
                        }
                    }
                });
            }
            (StatusCode::OK, axum::Json(json!({ "status": "stored" }))).into_response()
        }
        Ok(IntakeStored::Duplicate(id)) => {
            tracing::info!(tenant_id = %tenant, inbox_id = %id, topic = %delivery.topic, "duplicate webhook acknowledged");
            (StatusCode::OK, axum::Json(json!({ "status": "duplicate" }))).into_response()
        }
        // Not acknowledged: Shopify retries, so a database hiccup loses nothing.
        Err(error) => AppError::from(error).into_response(),
    }
}

fn new_event(
    connection: &Connection,
    delivery: &WebhookHeaders,
    payload: Vec<u8>,
    status: InboxStatus,
    error: Option<String>,
) -> NewInboxEvent {
    NewInboxEvent {
        connection_id: connection.id,
        webhook_id: delivery.webhook_id.clone(),
        topic: delivery.topic.clone(),
        shop_domain: delivery.shop_domain.clone(),
        api_version: delivery.api_version.clone(),
        event_id: delivery.event_id.clone(),
        triggered_at: delivery.triggered_at.clone(),
        payload,
        status,
        error,
    }
}

/// `customers/data_request`, `customers/redact` and `shop/redact`: stored, then honoured at
/// once, as there is no flow to wait for.
async fn receive_privacy_request(
    state: &AppState,
    connection: &Connection,
    routes: &IntakeRoutes,
    delivery: &WebhookHeaders,
    body: Bytes,
) -> Response {
    let tenant = connection.tenant_id;
    let request = serde_json::from_slice::<serde_json::Value>(&body);
    let (status, error) = match &request {
        Err(parse) => (
            InboxStatus::Failed,
            Some(format!("malformed JSON: {parse}")),
        ),
        Ok(_) => match routes.hold_reason() {
            Some(reason) => (InboxStatus::Held, Some(reason.to_owned())),
            None => (InboxStatus::Received, None),
        },
    };
    let event = new_event(connection, delivery, body.to_vec(), status, error);
    match (state.store.insert_inbox(tenant, &event).await, request) {
        (Ok(InboxInsert::Stored(id)), Ok(request)) if status != InboxStatus::Failed => {
            if let Err(error) =
                crate::privacy::act(state, connection, &delivery.topic, id, &request).await
            {
                return error.into_response();
            }
            (StatusCode::OK, axum::Json(json!({ "status": "stored" }))).into_response()
        }
        (Ok(InboxInsert::Stored(_)), _) => {
            (StatusCode::OK, axum::Json(json!({ "status": "stored" }))).into_response()
        }
        (Ok(InboxInsert::Duplicate(_)), _) => {
            (StatusCode::OK, axum::Json(json!({ "status": "duplicate" }))).into_response()
        }
        (Err(error), _) => AppError::from(error).into_response(),
    }
}
