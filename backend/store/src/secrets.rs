//! Encrypted secrets: write-only values (API tokens, client secrets) stored under a tenant's
//! data key (see [`crate::crypto`]). Reading one back is reserved for the code that must use it
//! and always leaves an audit row.

use std::sync::{Arc, PoisonError};

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::crypto::{CryptoError, DataKey, Keyring, MasterKey, wrapped_key_version};
use crate::pool::{on_pool, on_write};
use crate::{NewAuditEntry, Store, StoreError, TenantId};

/// Identifies a stored secret; part of the associated data of its ciphertext.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type,
)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct SecretId(pub Uuid);

impl SecretId {
    /// A new, time-ordered id.
    pub fn new() -> Self {
        SecretId(Uuid::now_v7())
    }
}

impl Default for SecretId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for SecretId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for SecretId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(SecretId)
    }
}

/// What may be shown about a secret: that it is set and when it changed, never its value.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct SecretMeta {
    /// Primary key.
    pub id: SecretId,
    /// The tenant-unique name, e.g. `connection:<uuid>:client_secret`.
    pub name: String,
    /// When it was first set.
    pub created_at: DateTime<Utc>,
    /// When its value last changed.
    pub updated_at: DateTime<Utc>,
}

/// The outcome of [`Store::rotate_master_key`].
#[derive(Debug)]
pub struct RotationReport {
    /// The master key version every data key should now be wrapped under.
    pub new_version: u32,
    /// Data keys re-wrapped by this pass.
    pub rewrapped: u64,
    /// Data keys that were already under the new version (a re-run after an interruption).
    pub already_current: u64,
    /// Data keys that could not be re-wrapped; they stay readable with their old master key.
    pub failed: Vec<RotationFailure>,
}

/// One tenant whose data key could not be re-wrapped.
#[derive(Debug)]
pub struct RotationFailure {
    /// The tenant concerned.
    pub tenant: TenantId,
    /// Why (for example its old master key version is not in the keyring).
    pub error: CryptoError,
}

const META_COLUMNS: &str = "id, name, created_at, updated_at";
const SECRET_CONFLICT: &str = "uq_secrets_tenant_id_name";
// A put races only with another put or delete of the same name; a few rounds settle it.
const PUT_ATTEMPTS: usize = 4;

#[derive(sqlx::FromRow)]
struct TenantKeyRow {
    tenant_id: TenantId,
    master_version: i64,
    wrapped_key: Vec<u8>,
}

impl TenantKeyRow {
    fn unwrap_with(&self, keyring: &Keyring) -> Result<DataKey, StoreError> {
        let recorded = wrapped_key_version(&self.wrapped_key).map(i64::from);
        if recorded != Some(self.master_version) {
            return Err(StoreError::Corrupt {
                what: "tenant_keys.master_version",
                detail: format!(
                    "tenant {} records version {} but its wrapped key says {recorded:?}",
                    self.tenant_id, self.master_version
                ),
            });
        }
        Ok(keyring.unwrap(self.tenant_id, &self.wrapped_key)?)
    }
}

fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

impl Store {
    fn keyring(&self) -> Result<Arc<Keyring>, StoreError> {
        let cell = self.keyring.as_ref().ok_or(StoreError::NoKeyring)?;
        // The keyring is replaced whole, never mutated in place, so a poisoned lock still holds
        // a consistent value.
        let guard = cell.read().unwrap_or_else(PoisonError::into_inner);
        Ok(Arc::clone(&guard))
    }

    /// True when this store can read and write secrets.
    pub fn has_keyring(&self) -> bool {
        self.keyring.is_some()
    }

    async fn tenant_key_row(&self, tenant: TenantId) -> Result<Option<TenantKeyRow>, StoreError> {
        let sql = "SELECT tenant_id, master_version, wrapped_key FROM tenant_keys \
                   WHERE tenant_id = $1";
        let row = on_pool!(self, pool => {
            sqlx::query_as(sql).bind(tenant).fetch_optional(pool).await
        })?;
        Ok(row)
    }

    /// The tenant's data key, created and stored (wrapped) on first use when `create` is set.
    async fn data_key(
        &self,
        keyring: &Keyring,
        tenant: TenantId,
        create: bool,
    ) -> Result<Option<DataKey>, StoreError> {
        if let Some(row) = self.tenant_key_row(tenant).await? {
            return row.unwrap_with(keyring).map(Some);
        }
        if !create {
            return Ok(None);
        }
        let data_key = DataKey::generate()?;
        let wrapped = keyring.wrap(tenant, &data_key)?;
        let sql = "INSERT INTO tenant_keys (tenant_id, master_version, wrapped_key, created_at) \
                   VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO NOTHING RETURNING tenant_id";
        let inserted: Option<(TenantId,)> = on_write!(self, pool => {
            sqlx::query_as(sql)
                .bind(tenant)
                .bind(i64::from(wrapped.master_version))
                .bind(&wrapped.bytes)
                .bind(Utc::now())
                .fetch_optional(pool)
                .await
        })
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                StoreError::NotFound
            } else {
                StoreError::from(e)
            }
        })?;
        if inserted.is_some() {
            return Ok(Some(data_key));
        }
        // A concurrent first use won the insert: use its key, never ours.
        let row = self
            .tenant_key_row(tenant)
            .await?
            .ok_or(StoreError::NotFound)?;
        row.unwrap_with(keyring).map(Some)
    }

    async fn secret_id(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<Option<SecretId>, StoreError> {
        let sql = "SELECT id FROM secrets WHERE tenant_id = $1 AND name = $2";
        let row: Option<(SecretId,)> = on_pool!(self, pool => {
            sqlx::query_as(sql).bind(tenant).bind(name).fetch_optional(pool).await
        })?;
        Ok(row.map(|(id,)| id))
    }

    /// Sets a secret, replacing any value under the same name; creates the tenant's data key on
    /// first use. An unknown tenant is `NotFound`.
    pub async fn put_secret(
        &self,
        tenant: TenantId,
        name: &str,
        plaintext: &SecretString,
    ) -> Result<SecretMeta, StoreError> {
        let keyring = self.keyring()?;
        let data_key = self
            .data_key(&keyring, tenant, true)
            .await?
            .ok_or(StoreError::NotFound)?;
        for _ in 0..PUT_ATTEMPTS {
            let now = Utc::now();
            // The ciphertext is bound to the row's id, so an update must encrypt for the id the
            // row already has; an upsert with a fresh id would bind to the wrong one.
            let written: Option<SecretMeta> = match self.secret_id(tenant, name).await? {
                Some(id) => {
                    let ciphertext = data_key.encrypt_secret(tenant, id, plaintext)?;
                    let sql = format!(
                        "UPDATE secrets SET ciphertext = $3, updated_at = $4 \
                         WHERE tenant_id = $1 AND id = $2 RETURNING {META_COLUMNS}"
                    );
                    on_write!(self, pool => {
                        sqlx::query_as(&sql)
                            .bind(tenant)
                            .bind(id)
                            .bind(&ciphertext)
                            .bind(now)
                            .fetch_optional(pool)
                            .await
                    })?
                }
                None => {
                    let id = SecretId::new();
                    let ciphertext = data_key.encrypt_secret(tenant, id, plaintext)?;
                    let sql = format!(
                        "INSERT INTO secrets (id, tenant_id, name, ciphertext, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $5) \
                         ON CONFLICT (tenant_id, name) DO NOTHING RETURNING {META_COLUMNS}"
                    );
                    on_write!(self, pool => {
                        sqlx::query_as(&sql)
                            .bind(id)
                            .bind(tenant)
                            .bind(name)
                            .bind(&ciphertext)
                            .bind(now)
                            .fetch_optional(pool)
                            .await
                    })?
                }
            };
            if let Some(meta) = written {
                return Ok(meta);
            }
        }
        Err(StoreError::Conflict {
            constraint: SECRET_CONFLICT.to_owned(),
        })
    }

    /// Whether a secret is set and when it last changed; never its value.
    pub async fn secret_meta(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<Option<SecretMeta>, StoreError> {
        let sql = format!("SELECT {META_COLUMNS} FROM secrets WHERE tenant_id = $1 AND name = $2");
        let row = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(tenant).bind(name).fetch_optional(pool).await
        })?;
        Ok(row)
    }

    /// Metadata of the tenant's secrets whose names start with `prefix` (e.g.
    /// `connection:<uuid>:`), by name.
    pub async fn list_secrets(
        &self,
        tenant: TenantId,
        prefix: &str,
    ) -> Result<Vec<SecretMeta>, StoreError> {
        // substr/length instead of LIKE: names may contain `%` or `_`.
        let sql = format!(
            "SELECT {META_COLUMNS} FROM secrets \
             WHERE tenant_id = $1 AND substr(name, 1, length($2)) = $2 ORDER BY name"
        );
        let rows = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(tenant).bind(prefix).fetch_all(pool).await
        })?;
        Ok(rows)
    }

    /// Decrypts a secret for `actor` (who) and `purpose` (why, e.g. `connection.test`), writing a
    /// `secret.decrypt` audit row either way. Another tenant's secret is `NotFound`.
    pub async fn reveal_secret(
        &self,
        tenant: TenantId,
        name: &str,
        actor: &str,
        purpose: &str,
    ) -> Result<SecretString, StoreError> {
        let keyring = self.keyring()?;
        let sql = "SELECT id, ciphertext FROM secrets WHERE tenant_id = $1 AND name = $2";
        let row: Option<(SecretId, Vec<u8>)> = on_pool!(self, pool => {
            sqlx::query_as(sql).bind(tenant).bind(name).fetch_optional(pool).await
        })?;
        let (id, ciphertext) = row.ok_or(StoreError::NotFound)?;
        let revealed = match self.data_key(&keyring, tenant, false).await {
            Ok(Some(data_key)) => data_key
                .decrypt_secret(tenant, id, &ciphertext)
                .map_err(StoreError::from),
            Ok(None) => Err(StoreError::Corrupt {
                what: "tenant_keys",
                detail: format!("tenant {tenant} has a secret but no data key"),
            }),
            Err(error) => Err(error),
        };
        let mut detail = serde_json::json!({
            "secret": name,
            "secret_id": id,
            "purpose": purpose,
            "outcome": if revealed.is_ok() { "ok" } else { "failed" },
        });
        // Failed decrypts are the interesting ones (tampering, a wrong key): say why. Crypto and
        // store messages never contain plaintext or key material.
        if let Err(error) = &revealed {
            detail["error"] = serde_json::Value::String(error.to_string());
        }
        self.audit(&NewAuditEntry {
            tenant_id: Some(tenant),
            actor: actor.to_owned(),
            action: "secret.decrypt".to_owned(),
            detail,
        })
        .await?;
        revealed
    }

    /// Removes a secret; answers whether one was there.
    pub async fn delete_secret(&self, tenant: TenantId, name: &str) -> Result<bool, StoreError> {
        let sql = "DELETE FROM secrets WHERE tenant_id = $1 AND name = $2 RETURNING id";
        let row: Option<(SecretId,)> = on_write!(self, pool => {
            sqlx::query_as(sql).bind(tenant).bind(name).fetch_optional(pool).await
        })?;
        Ok(row.is_some())
    }

    /// Removes every secret of the tenant whose name starts with `prefix`; answers how many.
    pub async fn delete_secrets_with_prefix(
        &self,
        tenant: TenantId,
        prefix: &str,
    ) -> Result<u64, StoreError> {
        let sql = "DELETE FROM secrets WHERE tenant_id = $1 AND substr(name, 1, length($2)) = $2";
        let done = on_write!(self, pool => {
            sqlx::query(sql).bind(tenant).bind(prefix).execute(pool).await.map(|r| r.rows_affected())
        })?;
        Ok(done)
    }

    /// Makes `new` the current master key and re-wraps every tenant data key under it, in one
    /// pass, without touching secret ciphertexts. The store's keyring must still hold the old
    /// versions; it keeps them and gains `new` (shared by all clones of this store), so secrets
    /// stay readable throughout. Re-running with the same keys after an interruption finishes
    /// the job. Drop old keys from configuration only once `failed` is empty.
    pub async fn rotate_master_key(&self, new: MasterKey) -> Result<RotationReport, StoreError> {
        let cell = self.keyring.as_ref().ok_or(StoreError::NoKeyring)?;
        let rotated = Arc::new(self.keyring()?.rotated_to(new)?);
        // Switch first, so data keys created in this process during the pass already use the
        // new version.
        *cell.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&rotated);
        let version = rotated.current_version();
        let version_db = i64::from(version);

        let count_sql = "SELECT COUNT(*) FROM tenant_keys WHERE master_version = $1";
        let (already_current,): (i64,) = on_pool!(self, pool => {
            sqlx::query_as(count_sql).bind(version_db).fetch_one(pool).await
        })?;
        let select_sql = "SELECT tenant_id, master_version, wrapped_key FROM tenant_keys \
                          WHERE master_version <> $1 ORDER BY tenant_id";
        let rows: Vec<TenantKeyRow> = on_pool!(self, pool => {
            sqlx::query_as(select_sql).bind(version_db).fetch_all(pool).await
        })?;

        let mut report = RotationReport {
            new_version: version,
            rewrapped: 0,
            already_current: u64::try_from(already_current).unwrap_or(0),
            failed: Vec::new(),
        };
        let update_sql = "UPDATE tenant_keys SET master_version = $2, wrapped_key = $3, \
                          rotated_at = $4 WHERE tenant_id = $1 AND master_version = $5";
        for row in rows {
            let rewrapped = match row.unwrap_with(&rotated) {
                Ok(data_key) => rotated.wrap(row.tenant_id, &data_key),
                Err(StoreError::Crypto(error)) => Err(error),
                Err(other) => return Err(other),
            };
            let wrapped = match rewrapped {
                Ok(wrapped) => wrapped,
                Err(error) => {
                    tracing::warn!(tenant_id = %row.tenant_id, %error, "data key not re-wrapped");
                    report.failed.push(RotationFailure {
                        tenant: row.tenant_id,
                        error,
                    });
                    continue;
                }
            };
            // Compare-and-swap on the old version: a concurrent rotation that got here first
            // wins, and the row is then already current.
            let changed = on_write!(self, pool => {
                sqlx::query(update_sql)
                    .bind(row.tenant_id)
                    .bind(version_db)
                    .bind(&wrapped.bytes)
                    .bind(Utc::now())
                    .bind(row.master_version)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            })?;
            if changed == 1 {
                report.rewrapped += 1;
            } else {
                report.already_current += 1;
            }
        }
        tracing::info!(
            new_version = version,
            rewrapped = report.rewrapped,
            already_current = report.already_current,
            failed = report.failed.len(),
            "master key rotation pass finished"
        );
        Ok(report)
    }
}
