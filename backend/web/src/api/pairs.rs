use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use syncline_store::{PairId, PairWebhook};
use utoipa::ToSchema;

use super::ApiJson;
use crate::auth::{ApiActor, Permission};
use crate::connections::{self, PairInput, PairView};
use crate::{AppError, AppState};

/// Why a pair is paused.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PauseRequest {
    /// Free text shown on the pair's page.
    #[serde(default)]
    pub reason: String,
}

/// A registered webhook subscription.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct WebhookView {
    /// Topic.
    pub topic: String,
    /// Shopify's subscription id.
    pub subscription_id: String,
    /// Delivery URL.
    pub callback_url: String,
}

impl From<PairWebhook> for WebhookView {
    fn from(hook: PairWebhook) -> Self {
        WebhookView {
            topic: hook.topic,
            subscription_id: hook.subscription_id,
            callback_url: hook.callback_url,
        }
    }
}

/// The tenant's pairs.
#[utoipa::path(get, path = "/api/v1/pairs", tag = "pairs", responses((status = 200, body = [PairView])))]
pub async fn list_pairs(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> Result<Json<Vec<PairView>>, AppError> {
    let context = actor.require(Permission::View)?;
    Ok(Json(
        state
            .store
            .list_pairs(context.tenant.id)
            .await?
            .into_iter()
            .map(PairView::from)
            .collect(),
    ))
}

/// Creates a draft pair from a Shopify and a D365 connection.
#[utoipa::path(post, path = "/api/v1/pairs", tag = "pairs", request_body = PairInput,
    responses((status = 201, body = PairView), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create_pair(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(input): ApiJson<PairInput>,
) -> Result<(StatusCode, Json<PairView>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(
            connections::create_pair(&state, &actor, &input)
                .await?
                .into(),
        ),
    ))
}

/// One pair.
#[utoipa::path(get, path = "/api/v1/pairs/{pair_id}", tag = "pairs", params(("pair_id" = uuid::Uuid, Path, description = "Pair id")),
    responses((status = 200, body = PairView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_pair(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<PairView>, AppError> {
    let context = actor.require(Permission::View)?;
    Ok(Json(
        state
            .store
            .pair(context.tenant.id, PairId(id))
            .await?
            .ok_or(AppError::NotFound)?
            .into(),
    ))
}

/// Renames a pair or changes its flows.
#[utoipa::path(patch, path = "/api/v1/pairs/{pair_id}", tag = "pairs", params(("pair_id" = uuid::Uuid, Path, description = "Pair id")),
    request_body = PairInput, responses((status = 200, body = PairView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn update_pair(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<uuid::Uuid>,
    ApiJson(input): ApiJson<PairInput>,
) -> Result<Json<PairView>, AppError> {
    Ok(Json(
        connections::update_pair(&state, &actor, PairId(id), &input)
            .await?
            .into(),
    ))
}

/// Activates a pair: registers its Shopify webhooks (idempotent).
#[utoipa::path(post, path = "/api/v1/pairs/{pair_id}/activate", tag = "pairs", params(("pair_id" = uuid::Uuid, Path, description = "Pair id")),
    responses((status = 200, body = PairView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn activate_pair(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<PairView>, AppError> {
    Ok(Json(
        connections::activate(&state, &actor, PairId(id))
            .await?
            .into(),
    ))
}

/// Pauses a pair: removes its Shopify webhooks (idempotent) and records the reason.
#[utoipa::path(post, path = "/api/v1/pairs/{pair_id}/pause", tag = "pairs", params(("pair_id" = uuid::Uuid, Path, description = "Pair id")),
    request_body = PauseRequest, responses((status = 200, body = PairView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn pause_pair(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<uuid::Uuid>,
    ApiJson(request): ApiJson<PauseRequest>,
) -> Result<Json<PairView>, AppError> {
    Ok(Json(
        connections::pause(&state, &actor, PairId(id), &request.reason)
            .await?
            .into(),
    ))
}

/// The Shopify webhook subscriptions registered for a pair.
#[utoipa::path(get, path = "/api/v1/pairs/{pair_id}/webhooks", tag = "pairs", params(("pair_id" = uuid::Uuid, Path, description = "Pair id")),
    responses((status = 200, body = [WebhookView]), (status = 404, body = crate::error::ErrorBody)))]
pub async fn pair_webhooks(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<Vec<WebhookView>>, AppError> {
    let context = actor.require(Permission::View)?;
    let pair = state
        .store
        .pair(context.tenant.id, PairId(id))
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Json(
        state
            .store
            .pair_webhooks(context.tenant.id, pair.id)
            .await?
            .into_iter()
            .map(WebhookView::from)
            .collect(),
    ))
}
