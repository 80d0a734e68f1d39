use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use syncline_store::AuditEntry;
use utoipa::ToSchema;

use crate::auth::{ApiActor, Permission};
use crate::{AppError, AppState};

/// One audit record.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    /// Id.
    pub id: uuid::Uuid,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Details.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<AuditEntry> for AuditView {
    fn from(entry: AuditEntry) -> Self {
        AuditView {
            id: entry.id,
            actor: entry.actor,
            action: entry.action,
            detail: entry.detail.0,
            created_at: entry.created_at,
        }
    }
}

/// The tenant's audit log, newest first (owners only).
#[utoipa::path(get, path = "/api/v1/audit-log", tag = "audit", responses((status = 200, body = [AuditView]), (status = 403, body = crate::error::ErrorBody)))]
pub async fn tenant_audit_log(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> Result<Json<Vec<AuditView>>, AppError> {
    let context = actor.require(Permission::ViewAudit)?;
    Ok(Json(
        state
            .store
            .tenant_audit_log(context.tenant.id, 500)
            .await?
            .into_iter()
            .map(AuditView::from)
            .collect(),
    ))
}
