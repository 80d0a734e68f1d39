//! The daily digest: per-tenant settings, the once-a-day claim (a primary key on tenant and
//! UTC day, so restarts and several worker processes never send a day twice), and the
//! figures it reports.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

use crate::pool::{on_pool, on_write};
use crate::{PairId, Store, StoreError, TenantId};

/// A tenant's digest settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestSettings {
    /// Sent at all.
    pub enabled: bool,
    /// Email addresses.
    pub recipients: Vec<String>,
    /// Sent at the first evaluation at or after this hour (UTC, 0 to 23).
    pub hour_utc: i64,
}

impl Default for DigestSettings {
    fn default() -> Self {
        DigestSettings {
            enabled: false,
            recipients: Vec::new(),
            hour_utc: 7,
        }
    }
}

#[derive(sqlx::FromRow)]
struct DigestRow {
    tenant_id: TenantId,
    enabled: bool,
    recipients: Json<Vec<String>>,
    hour_utc: i64,
}

impl From<DigestRow> for DigestSettings {
    fn from(row: DigestRow) -> Self {
        DigestSettings {
            enabled: row.enabled,
            recipients: row.recipients.0,
            hour_utc: row.hour_utc,
        }
    }
}

/// Runs of one pair in the digest's day, by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PairDigest {
    /// The pair.
    pub pair_id: PairId,
    /// Its name.
    pub name: String,
    /// Succeeded.
    pub succeeded: i64,
    /// Failed or dead-lettered.
    pub failed: i64,
    /// Still queued, running or retrying.
    pub pending: i64,
    /// Waiting or in progress now, whenever created.
    pub backlog: i64,
}

/// What a digest reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DigestFigures {
    /// One entry per pair, by name.
    pub pairs: Vec<PairDigest>,
    /// The most frequent errors of the day's failed and dead runs, with their counts.
    pub top_errors: Vec<(String, i64)>,
    /// When the oldest waiting run was created.
    pub oldest_waiting: Option<DateTime<Utc>>,
}

impl Store {
    /// A tenant's digest settings (the defaults, switched off, when never saved).
    pub async fn digest_settings(&self, tenant: TenantId) -> Result<DigestSettings, StoreError> {
        let row: Option<DigestRow> = on_pool!(self, pool => {
            sqlx::query_as("SELECT tenant_id, enabled, recipients, hour_utc FROM alert_digests WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(DigestSettings::from).unwrap_or_default())
    }

    /// Saves a tenant's digest settings.
    pub async fn save_digest_settings(
        &self,
        tenant: TenantId,
        settings: &DigestSettings,
    ) -> Result<(), StoreError> {
        on_write!(self, pool => {
            sqlx::query(
                "INSERT INTO alert_digests (tenant_id, enabled, recipients, hour_utc, updated_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant_id) DO UPDATE SET enabled = $2, recipients = $3, hour_utc = $4, updated_at = $5",
            )
            .bind(tenant)
            .bind(settings.enabled)
            .bind(Json(&settings.recipients))
            .bind(settings.hour_utc)
            .bind(Utc::now())
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Every tenant whose digest is switched on, with its settings.
    pub async fn enabled_digests(&self) -> Result<Vec<(TenantId, DigestSettings)>, StoreError> {
        let rows: Vec<DigestRow> = on_pool!(self, pool => {
            sqlx::query_as("SELECT tenant_id, enabled, recipients, hour_utc FROM alert_digests WHERE enabled = TRUE ORDER BY tenant_id")
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(|r| (r.tenant_id, r.into())).collect())
    }

    /// Claims the digest of `day` (`YYYY-MM-DD`, UTC) for a tenant: true for exactly one caller
    /// per tenant and day, ever (unless [`Self::release_digest`] gives it back).
    pub async fn claim_digest(&self, tenant: TenantId, day: &str) -> Result<bool, StoreError> {
        let claimed: Option<(String,)> = on_write!(self, pool => {
            sqlx::query_as(
                "INSERT INTO alert_digest_sends (tenant_id, day, status, claimed_at) VALUES ($1, $2, 'sending', $3) \
                 ON CONFLICT (tenant_id, day) DO NOTHING RETURNING day",
            )
            .bind(tenant)
            .bind(day)
            .bind(Utc::now())
            .fetch_optional(pool)
            .await
        })?;
        Ok(claimed.is_some())
    }

    /// Marks a claimed digest as sent.
    pub async fn finish_digest(&self, tenant: TenantId, day: &str) -> Result<(), StoreError> {
        on_write!(self, pool => {
            sqlx::query("UPDATE alert_digest_sends SET status = 'sent', sent_at = $3 WHERE tenant_id = $1 AND day = $2")
                .bind(tenant)
                .bind(day)
                .bind(Utc::now())
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// Gives a claimed digest back after a failed send, so a later evaluation tries again.
    pub async fn release_digest(&self, tenant: TenantId, day: &str) -> Result<(), StoreError> {
        on_write!(self, pool => {
            sqlx::query("DELETE FROM alert_digest_sends WHERE tenant_id = $1 AND day = $2 AND status = 'sending'")
                .bind(tenant)
                .bind(day)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// The digest's figures: runs created in `[since, until)` by pair and outcome, their most
    /// frequent errors, and the backlog now.
    pub async fn digest_figures(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<DigestFigures, StoreError> {
        let per_pair = "SELECT p.id, p.name, \
               COALESCE(SUM(CASE WHEN r.created_at >= $2 AND r.created_at < $3 AND r.status = 'succeeded' THEN 1 ELSE 0 END), 0), \
               COALESCE(SUM(CASE WHEN r.created_at >= $2 AND r.created_at < $3 AND r.status IN ('failed', 'dead') THEN 1 ELSE 0 END), 0), \
               COALESCE(SUM(CASE WHEN r.created_at >= $2 AND r.created_at < $3 AND r.status IN ('queued', 'running', 'retrying') THEN 1 ELSE 0 END), 0), \
               COALESCE(SUM(CASE WHEN r.status IN ('queued', 'running', 'retrying') THEN 1 ELSE 0 END), 0) \
             FROM pairs p LEFT JOIN runs r ON r.tenant_id = p.tenant_id AND r.pair_id = p.id \
             WHERE p.tenant_id = $1 GROUP BY p.id, p.name ORDER BY p.name, p.id";
        let rows: Vec<(PairId, String, i64, i64, i64, i64)> = on_pool!(self, pool => {
            sqlx::query_as(per_pair).bind(tenant).bind(since).bind(until).fetch_all(pool).await
        })?;
        let errors = "SELECT error, COUNT(*) AS n FROM runs WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3 \
                      AND status IN ('failed', 'dead') AND error IS NOT NULL GROUP BY error ORDER BY n DESC, error LIMIT 5";
        let top_errors: Vec<(String, i64)> = on_pool!(self, pool => {
            sqlx::query_as(errors).bind(tenant).bind(since).bind(until).fetch_all(pool).await
        })?;
        let oldest = "SELECT MIN(created_at) FROM runs WHERE tenant_id = $1 AND status IN ('queued', 'running', 'retrying')";
        let oldest_waiting: Option<DateTime<Utc>> = on_pool!(self, pool => {
            sqlx::query_scalar(oldest).bind(tenant).fetch_one(pool).await
        })?;
        Ok(DigestFigures {
            pairs: rows
                .into_iter()
                .map(
                    |(pair_id, name, succeeded, failed, pending, backlog)| PairDigest {
                        pair_id,
                        name,
                        succeeded,
                        failed,
                        pending,
                        backlog,
                    },
                )
                .collect(),
            top_errors,
            oldest_waiting,
        })
    }
}
