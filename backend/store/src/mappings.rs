//! Mapping drafts and published versions, per pair and flow.
//!
//! The store keeps the documents as JSON and does not interpret them: the mapping engine
//! (`syncline-core`) validates a document before it is saved or published.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

use crate::pool::{on_pool, on_write};
use crate::{PairId, Store, StoreError, TenantId, UserId};

/// The document a tenant is editing for one pair and flow.
#[derive(Debug, Clone, Serialize)]
pub struct MappingDraft {
    /// Pair.
    pub pair_id: PairId,
    /// Flow name.
    pub flow: String,
    /// The mapping document (JSON).
    pub document: serde_json::Value,
    /// Who saved it last.
    pub updated_by: Option<UserId>,
    /// When.
    pub updated_at: DateTime<Utc>,
}

/// A published, immutable mapping version.
#[derive(Debug, Clone, Serialize)]
pub struct MappingVersion {
    /// Pair.
    pub pair_id: PairId,
    /// Flow name.
    pub flow: String,
    /// 1, 2, 3… per pair and flow.
    pub version: i64,
    /// The mapping document (JSON).
    pub document: serde_json::Value,
    /// What the publisher wrote about it.
    pub note: Option<String>,
    /// Who published it.
    pub published_by: Option<UserId>,
    /// When.
    pub published_at: DateTime<Utc>,
}

impl MappingVersion {
    /// The label runs record, e.g. `v3`.
    pub fn label(&self) -> String {
        format!("v{}", self.version)
    }
}

#[derive(sqlx::FromRow)]
struct DraftRow {
    pair_id: PairId,
    flow: String,
    document: Json<serde_json::Value>,
    updated_by: Option<UserId>,
    updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    pair_id: PairId,
    flow: String,
    version: i64,
    document: Json<serde_json::Value>,
    note: Option<String>,
    published_by: Option<UserId>,
    published_at: DateTime<Utc>,
}

impl From<VersionRow> for MappingVersion {
    fn from(row: VersionRow) -> Self {
        MappingVersion {
            pair_id: row.pair_id,
            flow: row.flow,
            version: row.version,
            document: row.document.0,
            note: row.note,
            published_by: row.published_by,
            published_at: row.published_at,
        }
    }
}

const VERSION_COLUMNS: &str = "pair_id, flow, version, document, note, published_by, published_at";

impl Store {
    /// The draft of a pair's flow, if one was saved.
    pub async fn mapping_draft(
        &self,
        tenant: TenantId,
        pair: PairId,
        flow: &str,
    ) -> Result<Option<MappingDraft>, StoreError> {
        let sql = "SELECT pair_id, flow, document, updated_by, updated_at FROM mapping_drafts \
                   WHERE tenant_id = $1 AND pair_id = $2 AND flow = $3";
        let row: Option<DraftRow> = on_pool!(self, pool => {
            sqlx::query_as(sql).bind(tenant).bind(pair).bind(flow).fetch_optional(pool).await
        })?;
        Ok(row.map(|r| MappingDraft {
            pair_id: r.pair_id,
            flow: r.flow,
            document: r.document.0,
            updated_by: r.updated_by,
            updated_at: r.updated_at,
        }))
    }

    /// Saves (replaces) the draft of a pair's flow. `NotFound` when the pair is not the tenant's.
    pub async fn save_mapping_draft(
        &self,
        tenant: TenantId,
        pair: PairId,
        flow: &str,
        document: &serde_json::Value,
        by: Option<UserId>,
    ) -> Result<(), StoreError> {
        // Selecting from `pairs` with the tenant is what keeps one tenant off another's pair.
        let sql = "INSERT INTO mapping_drafts (tenant_id, pair_id, flow, document, updated_by, updated_at) \
                   SELECT tenant_id, id, $3, $4, $5, $6 FROM pairs WHERE tenant_id = $1 AND id = $2 \
                   ON CONFLICT (pair_id, flow) DO UPDATE SET document = excluded.document, \
                   updated_by = excluded.updated_by, updated_at = excluded.updated_at";
        let done = on_write!(self, pool => {
            sqlx::query(sql)
                .bind(tenant)
                .bind(pair)
                .bind(flow)
                .bind(Json(document))
                .bind(by)
                .bind(Utc::now())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Throws the draft away (the published version stays what runs use).
    pub async fn discard_mapping_draft(
        &self,
        tenant: TenantId,
        pair: PairId,
        flow: &str,
    ) -> Result<(), StoreError> {
        let sql = "DELETE FROM mapping_drafts WHERE tenant_id = $1 AND pair_id = $2 AND flow = $3";
        on_write!(self, pool => {
            sqlx::query(sql).bind(tenant).bind(pair).bind(flow).execute(pool).await.map(|_| ())
        })?;
        Ok(())
    }

    /// Publishes a document as the next version of a pair's flow and discards the draft.
    /// `NotFound` when the pair is not the tenant's.
    pub async fn publish_mapping(
        &self,
        tenant: TenantId,
        pair: PairId,
        flow: &str,
        document: &serde_json::Value,
        note: Option<&str>,
        by: Option<UserId>,
    ) -> Result<MappingVersion, StoreError> {
        let sql = format!(
            "INSERT INTO mapping_versions (tenant_id, pair_id, flow, version, document, note, published_by, published_at) \
             SELECT p.tenant_id, p.id, $3, \
                    COALESCE((SELECT MAX(v.version) FROM mapping_versions v WHERE v.pair_id = p.id AND v.flow = $3), 0) + 1, \
                    $4, $5, $6, $7 \
             FROM pairs p WHERE p.tenant_id = $1 AND p.id = $2 \
             RETURNING {VERSION_COLUMNS}"
        );
        // Two publishers at once compute the same number; the primary key refuses the second,
        // which then takes the next number.
        let mut tries = 0;
        let row: VersionRow = loop {
            tries += 1;
            let result: Result<Option<VersionRow>, StoreError> = on_write!(self, pool => {
                sqlx::query_as(&sql)
                    .bind(tenant)
                    .bind(pair)
                    .bind(flow)
                    .bind(Json(document))
                    .bind(note)
                    .bind(by)
                    .bind(Utc::now())
                    .fetch_optional(pool)
                    .await
                    .map_err(StoreError::from)
            });
            match result {
                Ok(Some(row)) => break row,
                Ok(None) => return Err(StoreError::NotFound),
                Err(StoreError::Conflict { .. }) if tries < 5 => continue,
                Err(error) => return Err(error),
            }
        };
        self.discard_mapping_draft(tenant, pair, flow).await?;
        Ok(row.into())
    }

    /// Every published version of a pair's flow, newest first.
    pub async fn mapping_versions(
        &self,
        tenant: TenantId,
        pair: PairId,
        flow: &str,
    ) -> Result<Vec<MappingVersion>, StoreError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM mapping_versions \
             WHERE tenant_id = $1 AND pair_id = $2 AND flow = $3 ORDER BY version DESC"
        );
        let rows: Vec<VersionRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(tenant).bind(pair).bind(flow).fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(MappingVersion::from).collect())
    }

    /// One published version.
    pub async fn mapping_version(
        &self,
        tenant: TenantId,
        pair: PairId,
        flow: &str,
        version: i64,
    ) -> Result<Option<MappingVersion>, StoreError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM mapping_versions \
             WHERE tenant_id = $1 AND pair_id = $2 AND flow = $3 AND version = $4"
        );
        let row: Option<VersionRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(tenant).bind(pair).bind(flow).bind(version).fetch_optional(pool).await
        })?;
        Ok(row.map(MappingVersion::from))
    }

    /// The version runs use: the newest published one (none means the default template).
    pub async fn published_mapping(
        &self,
        tenant: TenantId,
        pair: PairId,
        flow: &str,
    ) -> Result<Option<MappingVersion>, StoreError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM mapping_versions \
             WHERE tenant_id = $1 AND pair_id = $2 AND flow = $3 ORDER BY version DESC LIMIT 1"
        );
        let row: Option<VersionRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(tenant).bind(pair).bind(flow).fetch_optional(pool).await
        })?;
        Ok(row.map(MappingVersion::from))
    }
}
