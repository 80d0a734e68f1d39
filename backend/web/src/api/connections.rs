use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use syncline_store::ConnectionId;
use utoipa::ToSchema;

use super::ApiJson;
use crate::auth::{ApiActor, Permission};
use crate::connections::{self, ConnectionInput, ConnectionView};
use crate::{AppError, AppState};

/// The outcome of "Test connection".
#[derive(Debug, Serialize, ToSchema)]
pub struct TestResult {
    /// Whether the system answered as expected.
    pub ok: bool,
    /// What was checked, or what went wrong and what to do.
    pub message: String,
}

/// The tenant's connections (secrets shown only as set / not set).
#[utoipa::path(get, path = "/api/v1/connections", tag = "connections", responses((status = 200, body = [ConnectionView])))]
pub async fn list_connections(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> Result<Json<Vec<ConnectionView>>, AppError> {
    let context = actor.require(Permission::View)?;
    let mut views = Vec::new();
    for connection in state.store.list_connections(context.tenant.id).await? {
        views.push(connections::view(&state, connection).await?);
    }
    Ok(Json(views))
}

/// Creates a Shopify or D365 connection.
#[utoipa::path(post, path = "/api/v1/connections", tag = "connections", request_body = ConnectionInput,
    responses((status = 201, body = ConnectionView), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create_connection(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(input): ApiJson<ConnectionInput>,
) -> Result<(StatusCode, Json<ConnectionView>), AppError> {
    let connection = connections::create(&state, &actor, &input).await?;
    Ok((
        StatusCode::CREATED,
        Json(connections::view(&state, connection).await?),
    ))
}

/// One connection.
#[utoipa::path(get, path = "/api/v1/connections/{connection_id}", tag = "connections", params(("connection_id" = uuid::Uuid, Path, description = "Connection id")),
    responses((status = 200, body = ConnectionView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_connection(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<ConnectionView>, AppError> {
    let context = actor.require(Permission::View)?;
    let connection = state
        .store
        .connection(context.tenant.id, ConnectionId(id))
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Json(connections::view(&state, connection).await?))
}

/// Changes settings; secret fields given replace the stored ones, omitted ones are kept.
#[utoipa::path(patch, path = "/api/v1/connections/{connection_id}", tag = "connections", params(("connection_id" = uuid::Uuid, Path, description = "Connection id")),
    request_body = ConnectionInput, responses((status = 200, body = ConnectionView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn update_connection(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<uuid::Uuid>,
    ApiJson(input): ApiJson<ConnectionInput>,
) -> Result<Json<ConnectionView>, AppError> {
    let connection = connections::update(&state, &actor, ConnectionId(id), &input).await?;
    Ok(Json(connections::view(&state, connection).await?))
}

/// Deletes a connection that no pair uses.
#[utoipa::path(delete, path = "/api/v1/connections/{connection_id}", tag = "connections", params(("connection_id" = uuid::Uuid, Path, description = "Connection id")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn delete_connection(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<uuid::Uuid>,
) -> Result<StatusCode, AppError> {
    connections::delete(&state, &actor, ConnectionId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Really talks to the system: Shopify `shop { name currencyCode }`; D365 a token, then one row.
#[utoipa::path(post, path = "/api/v1/connections/{connection_id}/test", tag = "connections", params(("connection_id" = uuid::Uuid, Path, description = "Connection id")),
    responses((status = 200, body = TestResult), (status = 404, body = crate::error::ErrorBody)))]
pub async fn test_connection(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<TestResult>, AppError> {
    let (ok, message) = crate::partners::test_connection(&state, &actor, ConnectionId(id)).await?;
    Ok(Json(TestResult { ok, message }))
}
