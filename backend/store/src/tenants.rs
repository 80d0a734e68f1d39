use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::pool::{on_pool, on_write};
use crate::{Store, StoreError, TenantId};

/// Whether a tenant may use the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    /// Normal operation.
    Active,
    /// Users cannot log in and pairs stop processing; incoming webhooks are still stored.
    Suspended,
}

impl TenantStatus {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        }
    }

    pub(crate) fn parse(value: &str) -> Result<Self, StoreError> {
        match value {
            "active" => Ok(TenantStatus::Active),
            "suspended" => Ok(TenantStatus::Suspended),
            other => Err(StoreError::Corrupt {
                what: "tenants.status",
                detail: other.to_owned(),
            }),
        }
    }
}

/// A customer company.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tenant {
    /// Primary key.
    pub id: TenantId,
    /// URL-safe unique handle.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Active or suspended.
    pub status: TenantStatus,
    /// The billing plan's code.
    pub plan: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What it takes to create a tenant.
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// URL-safe unique handle.
    pub slug: String,
    /// Display name.
    pub name: String,
}

#[derive(sqlx::FromRow)]
pub(crate) struct TenantRow {
    id: TenantId,
    slug: String,
    name: String,
    status: String,
    plan: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = StoreError;
    fn try_from(row: TenantRow) -> Result<Self, StoreError> {
        Ok(Tenant {
            id: row.id,
            slug: row.slug,
            name: row.name,
            status: TenantStatus::parse(&row.status)?,
            plan: row.plan,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const TENANT_COLUMNS: &str = "id, slug, name, status, plan, created_at, updated_at";

impl Store {
    /// Creates an active tenant. A taken slug is `Conflict { constraint: "uq_tenants_slug" }`.
    pub async fn create_tenant(&self, new: &NewTenant) -> Result<Tenant, StoreError> {
        let now = Utc::now();
        let sql = format!(
            "INSERT INTO tenants (id, slug, name, status, created_at, updated_at) \
             VALUES ($1, $2, $3, 'active', $4, $4) RETURNING {TENANT_COLUMNS}"
        );
        let row: TenantRow = on_write!(self, pool => {
            sqlx::query_as(&sql)
                .bind(TenantId::new())
                .bind(&new.slug)
                .bind(&new.name)
                .bind(now)
                .fetch_one(pool)
                .await
        })?;
        row.try_into()
    }

    /// The tenant with this id, if any.
    pub async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1");
        let row: Option<TenantRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        row.map(Tenant::try_from).transpose()
    }

    /// Every tenant, oldest first.
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY created_at, id");
        let rows: Vec<TenantRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await)?;
        rows.into_iter().map(Tenant::try_from).collect()
    }

    /// Suspends or reactivates a tenant.
    pub async fn set_tenant_status(
        &self,
        id: TenantId,
        status: TenantStatus,
    ) -> Result<Tenant, StoreError> {
        let sql = format!(
            "UPDATE tenants SET status = $2, updated_at = $3 WHERE id = $1 RETURNING {TENANT_COLUMNS}"
        );
        let row: Option<TenantRow> = on_write!(self, pool => {
            sqlx::query_as(&sql)
                .bind(id)
                .bind(status.as_str())
                .bind(Utc::now())
                .fetch_optional(pool)
                .await
        })?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }
}
