use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use syncline_store::{ApiKey, ApiKeyId, NewApiKey};
use utoipa::ToSchema;

use super::ApiJson;
use super::members::{check_can_grant, parse_role};
use crate::accounts::audit;
use crate::auth::secret::{random_token, token_hash};
use crate::auth::{Actor, ApiActor, Permission};
use crate::{AppError, AppState};

/// Prefix of every key, so leaked keys are recognisable by secret scanners.
pub const KEY_PREFIX: &str = "sk_syncline_";

/// An API key's metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    /// Id.
    pub id: uuid::Uuid,
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// First characters of the key.
    pub prefix: String,
    /// Creator.
    pub created_by: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last used.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(key: ApiKey) -> Self {
        ApiKeyView {
            id: key.id.0,
            name: key.name,
            role: key.role.to_string(),
            prefix: key.prefix,
            created_by: key.created_by,
            created_at: key.created_at,
            last_used_at: key.last_used_at,
            revoked_at: key.revoked_at,
        }
    }
}

/// A key to create.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewKeyRequest {
    /// A name to recognise it by.
    pub name: String,
    /// owner, admin, operator or viewer (not above your own).
    pub role: String,
}

/// A new key: the secret is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// The secret; store it now, it cannot be read again.
    pub key: String,
    /// Its metadata.
    pub api_key: ApiKeyView,
}

/// Creates a key for the actor's tenant; returns the secret once.
pub(crate) async fn create(
    state: &AppState,
    actor: &Actor,
    name: &str,
    role: &str,
) -> Result<(String, ApiKey), AppError> {
    let context = actor.require(Permission::Manage)?;
    let role = parse_role(role)?;
    check_can_grant(context, role)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(AppError::invalid(
            "name",
            "Enter a name of 1 to 80 characters.",
        ));
    }
    let secret = format!("{KEY_PREFIX}{}", random_token());
    let prefix: String = secret.chars().take(KEY_PREFIX.len() + 6).collect();
    let key = state
        .store
        .create_api_key(
            context.tenant.id,
            &NewApiKey {
                name: name.to_owned(),
                role,
                prefix,
                key_hash: token_hash(&secret),
                created_by: actor.label(),
            },
        )
        .await?;
    audit(
        &state.store,
        Some(context.tenant.id),
        &actor.label(),
        "api_key.create",
        json!({ "key_id": key.id, "name": key.name, "role": role }),
    )
    .await;
    Ok((secret, key))
}

/// Revokes one of the actor's tenant's keys.
pub(crate) async fn revoke(
    state: &AppState,
    actor: &Actor,
    id: ApiKeyId,
) -> Result<ApiKey, AppError> {
    let context = actor.require(Permission::Manage)?;
    let key = state.store.revoke_api_key(context.tenant.id, id).await?;
    audit(
        &state.store,
        Some(context.tenant.id),
        &actor.label(),
        "api_key.revoke",
        json!({ "key_id": key.id, "name": key.name }),
    )
    .await;
    Ok(key)
}

/// The tenant's API keys (metadata only).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", responses((status = 200, body = [ApiKeyView])))]
pub async fn list_keys(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> Result<Json<Vec<ApiKeyView>>, AppError> {
    let context = actor.require(Permission::View)?;
    Ok(Json(
        state
            .store
            .list_api_keys(context.tenant.id)
            .await?
            .into_iter()
            .map(ApiKeyView::from)
            .collect(),
    ))
}

/// Creates an API key; the response holds the secret, shown only this once.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = NewKeyRequest,
    responses((status = 201, body = CreatedKey), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create_key(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(request): ApiJson<NewKeyRequest>,
) -> Result<(StatusCode, Json<CreatedKey>), AppError> {
    let (secret, key) = create(&state, &actor, &request.name, &request.role).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            key: secret,
            api_key: key.into(),
        }),
    ))
}

/// One API key's metadata.
#[utoipa::path(get, path = "/api/v1/api-keys/{key_id}", tag = "api-keys", params(("key_id" = uuid::Uuid, Path, description = "Key id")),
    responses((status = 200, body = ApiKeyView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_key(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(key_id): Path<uuid::Uuid>,
) -> Result<Json<ApiKeyView>, AppError> {
    let context = actor.require(Permission::View)?;
    let key = state
        .store
        .api_key(context.tenant.id, ApiKeyId(key_id))
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Json(key.into()))
}

/// Revokes an API key at once.
#[utoipa::path(delete, path = "/api/v1/api-keys/{key_id}", tag = "api-keys", params(("key_id" = uuid::Uuid, Path, description = "Key id")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(key_id): Path<uuid::Uuid>,
) -> Result<StatusCode, AppError> {
    revoke(&state, &actor, ApiKeyId(key_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
