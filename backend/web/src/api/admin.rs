use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use syncline_store::{TenantId, TenantStatus, TenantSummary};
use utoipa::ToSchema;

use super::ApiJson;
use super::audit_log::AuditView;
use crate::accounts::{create_tenant_with_owner, set_tenant_status};
use crate::auth::ApiActor;
use crate::{AppError, AppState};

/// A tenant as the platform admin sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    /// Id.
    pub id: uuid::Uuid,
    /// Slug.
    pub slug: String,
    /// Name.
    pub name: String,
    /// active or suspended.
    pub status: String,
    /// Plan code.
    pub plan: String,
    /// Number of users.
    pub users: i64,
    /// Number of integration pairs.
    pub pairs: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
}

impl From<TenantSummary> for TenantView {
    fn from(summary: TenantSummary) -> Self {
        let tenant = summary.tenant;
        TenantView {
            id: tenant.id.0,
            slug: tenant.slug,
            name: tenant.name,
            status: tenant.status.as_str().to_owned(),
            plan: tenant.plan,
            users: summary.users,
            pairs: summary.pairs,
            created_at: tenant.created_at,
        }
    }
}

/// A tenant to create, with its first owner to invite.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewTenantRequest {
    /// Company name.
    pub name: String,
    /// URL handle; derived from the name when omitted.
    pub slug: Option<String>,
    /// Who becomes owner (invited by email).
    pub owner_email: String,
}

/// A created tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTenant {
    /// The tenant.
    pub tenant: TenantView,
    /// Whether the owner's invitation was emailed.
    pub invitation_emailed: bool,
}

/// Every tenant with status and user count.
#[utoipa::path(get, path = "/api/v1/admin/tenants", tag = "platform", responses((status = 200, body = [TenantView]), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list_tenants(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> Result<Json<Vec<TenantView>>, AppError> {
    actor.require_platform_admin()?;
    Ok(Json(
        state
            .store
            .tenant_summaries()
            .await?
            .into_iter()
            .map(TenantView::from)
            .collect(),
    ))
}

/// Creates a tenant and invites its owner.
#[utoipa::path(post, path = "/api/v1/admin/tenants", tag = "platform", request_body = NewTenantRequest,
    responses((status = 201, body = CreatedTenant), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create_tenant(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(request): ApiJson<NewTenantRequest>,
) -> Result<(StatusCode, Json<CreatedTenant>), AppError> {
    actor.require_platform_admin()?;
    let (tenant, invitation) = create_tenant_with_owner(
        &state,
        &actor.label(),
        &request.name,
        request.slug.as_deref(),
        &request.owner_email,
    )
    .await?;
    let view = TenantView::from(TenantSummary {
        tenant,
        users: 0,
        pairs: 0,
    });
    Ok((
        StatusCode::CREATED,
        Json(CreatedTenant {
            tenant: view,
            invitation_emailed: invitation.emailed,
        }),
    ))
}

async fn change_status(
    state: &AppState,
    actor: &crate::auth::Actor,
    id: uuid::Uuid,
    status: TenantStatus,
) -> Result<StatusCode, AppError> {
    actor.require_platform_admin()?;
    set_tenant_status(state, &actor.label(), TenantId(id), status).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Suspends a tenant: its users cannot log in and its pairs stop; webhooks are still stored.
#[utoipa::path(post, path = "/api/v1/admin/tenants/{tenant_id}/suspend", tag = "platform", params(("tenant_id" = uuid::Uuid, Path, description = "Tenant id")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn suspend_tenant(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(tenant_id): Path<uuid::Uuid>,
) -> Result<StatusCode, AppError> {
    change_status(&state, &actor, tenant_id, TenantStatus::Suspended).await
}

/// Reactivates a suspended tenant.
#[utoipa::path(post, path = "/api/v1/admin/tenants/{tenant_id}/reactivate", tag = "platform", params(("tenant_id" = uuid::Uuid, Path, description = "Tenant id")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn reactivate_tenant(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(tenant_id): Path<uuid::Uuid>,
) -> Result<StatusCode, AppError> {
    change_status(&state, &actor, tenant_id, TenantStatus::Active).await
}

/// A tenant's audit log, for platform admins.
#[utoipa::path(get, path = "/api/v1/admin/tenants/{tenant_id}/audit-log", tag = "platform", params(("tenant_id" = uuid::Uuid, Path, description = "Tenant id")),
    responses((status = 200, body = [AuditView]), (status = 404, body = crate::error::ErrorBody)))]
pub async fn tenant_audit_log(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(tenant_id): Path<uuid::Uuid>,
) -> Result<Json<Vec<AuditView>>, AppError> {
    actor.require_platform_admin()?;
    let tenant = state
        .store
        .tenant(TenantId(tenant_id))
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Json(
        state
            .store
            .tenant_audit_log(tenant.id, 500)
            .await?
            .into_iter()
            .map(AuditView::from)
            .collect(),
    ))
}
