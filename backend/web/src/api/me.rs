use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppError;
use crate::auth::ApiActor;

/// The caller as the API sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The user's email, for session callers.
    pub email: Option<String>,
    /// The key's name, for API-key callers.
    pub api_key: Option<String>,
    /// The tenant the call works in.
    pub tenant: Option<TenantRef>,
    /// The caller's role there.
    pub role: Option<String>,
    /// Whether the caller administers the platform.
    pub platform_admin: bool,
}

/// A tenant reference.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantRef {
    /// Id.
    pub id: uuid::Uuid,
    /// Slug.
    pub slug: String,
    /// Name.
    pub name: String,
}

/// Who am I.
#[utoipa::path(get, path = "/api/v1/me", tag = "account", responses((status = 200, body = Me), (status = 401, body = crate::error::ErrorBody)))]
pub async fn me(ApiActor(actor): ApiActor) -> Result<Json<Me>, AppError> {
    Ok(Json(Me {
        email: actor.user.as_ref().map(|u| u.email.clone()),
        api_key: actor.api_key.as_ref().map(|k| k.name.clone()),
        tenant: actor.tenant.as_ref().map(|t| TenantRef {
            id: t.tenant.id.0,
            slug: t.tenant.slug.clone(),
            name: t.tenant.name.clone(),
        }),
        role: actor.tenant.as_ref().map(|t| t.role.to_string()),
        platform_admin: actor.is_platform_admin(),
    }))
}
