use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

use crate::pool::{on_pool, on_write};
use crate::{Store, StoreError, TenantId};

/// A new audit record.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    /// The tenant concerned, or `None` for platform-level actions.
    pub tenant_id: Option<TenantId>,
    /// Who acted: a user email, `api-key:<name>`, `system`, or a CLI marker.
    pub actor: String,
    /// A dotted action name such as `tenant.create`.
    pub action: String,
    /// Structured details; must never contain secrets.
    pub detail: serde_json::Value,
}

/// A stored audit record.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    /// Primary key.
    pub id: Uuid,
    /// The tenant concerned, if any.
    pub tenant_id: Option<TenantId>,
    /// Who acted.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// Structured details.
    pub detail: Json<serde_json::Value>,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Appends an audit record.
    pub async fn audit(&self, entry: &NewAuditEntry) -> Result<(), StoreError> {
        let sql = "INSERT INTO audit_log (id, tenant_id, actor, action, detail, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        on_write!(self, pool => {
            sqlx::query(sql)
                .bind(Uuid::now_v7())
                .bind(entry.tenant_id)
                .bind(&entry.actor)
                .bind(&entry.action)
                .bind(Json(&entry.detail))
                .bind(Utc::now())
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// A tenant's audit records, newest first.
    pub async fn tenant_audit_log(
        &self,
        tenant: TenantId,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let sql = "SELECT id, tenant_id, actor, action, detail, created_at FROM audit_log \
                   WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2";
        let rows = on_pool!(self, pool => {
            sqlx::query_as(sql).bind(tenant).bind(i64::from(limit)).fetch_all(pool).await
        })?;
        Ok(rows)
    }
}
