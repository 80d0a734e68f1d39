//! Connections to external systems and integration pairs. Secrets are not here: they are
//! stored encrypted by [`crate::secrets`] under names derived from the connection id.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;

use crate::pool::{on_pool, on_write};
use crate::{ConnectionId, PairId, RunId, Store, StoreError, TenantId};

/// Which external system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionKind {
    /// A Shopify store.
    Shopify,
    /// A Dynamics 365 Finance & Operations environment.
    D365,
}

impl ConnectionKind {
    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionKind::Shopify => "shopify",
            ConnectionKind::D365 => "d365",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "shopify" => Some(ConnectionKind::Shopify),
            "d365" => Some(ConnectionKind::D365),
            _ => None,
        }
    }
}

/// A connection's non-secret settings and last test result.
#[derive(Debug, Clone, Serialize)]
pub struct Connection {
    /// Primary key.
    pub id: ConnectionId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Shopify or D365.
    pub kind: ConnectionKind,
    /// Display name, unique per tenant.
    pub name: String,
    /// Points at the built-in emulators.
    pub sandbox: bool,
    /// Non-secret settings (shop domain, environment URL, client id, …).
    pub settings: serde_json::Value,
    /// `untested`, `ok` or `failed`.
    pub test_status: String,
    /// The last test's message.
    pub test_message: Option<String>,
    /// When it was last tested.
    pub tested_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ConnectionRow {
    id: ConnectionId,
    tenant_id: TenantId,
    kind: String,
    name: String,
    sandbox: bool,
    settings: Json<serde_json::Value>,
    test_status: String,
    test_message: Option<String>,
    tested_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<ConnectionRow> for Connection {
    type Error = StoreError;
    fn try_from(row: ConnectionRow) -> Result<Self, StoreError> {
        Ok(Connection {
            id: row.id,
            tenant_id: row.tenant_id,
            kind: ConnectionKind::parse(&row.kind).ok_or_else(|| StoreError::Corrupt {
                what: "connections.kind",
                detail: row.kind.clone(),
            })?,
            name: row.name,
            sandbox: row.sandbox,
            settings: row.settings.0,
            test_status: row.test_status,
            test_message: row.test_message,
            tested_at: row.tested_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

pub(crate) const CONNECTION_COLUMNS: &str = "id, tenant_id, kind, name, sandbox, settings, test_status, test_message, tested_at, created_at, updated_at";

/// What it takes to create a connection.
#[derive(Debug, Clone)]
pub struct NewConnection {
    /// Shopify or D365.
    pub kind: ConnectionKind,
    /// Display name.
    pub name: String,
    /// Points at the emulators.
    pub sandbox: bool,
    /// Non-secret settings.
    pub settings: serde_json::Value,
}

/// Pair lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PairStatus {
    /// Configured, not processing.
    Draft,
    /// Webhooks registered, processing.
    Active,
    /// Stopped by a user or automatically (authentication failure), with a reason.
    Paused,
}

impl PairStatus {
    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PairStatus::Draft => "draft",
            PairStatus::Active => "active",
            PairStatus::Paused => "paused",
        }
    }

    fn parse(value: &str) -> Result<Self, StoreError> {
        match value {
            "draft" => Ok(PairStatus::Draft),
            "active" => Ok(PairStatus::Active),
            "paused" => Ok(PairStatus::Paused),
            other => Err(StoreError::Corrupt {
                what: "pairs.status",
                detail: other.to_owned(),
            }),
        }
    }
}

/// An integration pair.
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    /// Primary key.
    pub id: PairId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Display name.
    pub name: String,
    /// The Shopify side.
    pub shopify_connection_id: ConnectionId,
    /// The D365 side.
    pub d365_connection_id: ConnectionId,
    /// `sandbox` or `production`.
    pub environment: String,
    /// Lifecycle state.
    pub status: PairStatus,
    /// Why it is paused.
    pub pause_reason: Option<String>,
    /// Flows switched on (e.g. `orders`, `customers`).
    pub flows: Vec<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct PairRow {
    id: PairId,
    tenant_id: TenantId,
    name: String,
    shopify_connection_id: ConnectionId,
    d365_connection_id: ConnectionId,
    environment: String,
    status: String,
    pause_reason: Option<String>,
    flows: Json<Vec<String>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<PairRow> for Pair {
    type Error = StoreError;
    fn try_from(row: PairRow) -> Result<Self, StoreError> {
        Ok(Pair {
            id: row.id,
            tenant_id: row.tenant_id,
            name: row.name,
            shopify_connection_id: row.shopify_connection_id,
            d365_connection_id: row.d365_connection_id,
            environment: row.environment,
            status: PairStatus::parse(&row.status)?,
            pause_reason: row.pause_reason,
            flows: row.flows.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// What a worker needs before it claims a run, read in one query.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The run's pair.
    pub pair: Pair,
    /// Why processing of the tenant is held (tenant suspended, subscription suspended or
    /// lapsed), if it is.
    pub hold: Option<&'static str>,
    /// The newest published mapping version of the run's flow on the pair, if any.
    pub mapping_version: Option<i64>,
    /// The event the run processes.
    pub event: RunEvent,
    /// The pair's D365 connection.
    pub d365: Connection,
}

/// The parts of a run's event a flow reads.
#[derive(Debug, Clone)]
pub struct RunEvent {
    /// Topic, e.g. `orders/create`.
    pub topic: String,
    /// The shop that sent it.
    pub shop_domain: String,
    /// Raw body.
    pub payload: Vec<u8>,
}

#[derive(sqlx::FromRow)]
struct RunContextRow {
    #[sqlx(flatten)]
    pair: PairRow,
    tenant_status: String,
    subscription_status: Option<String>,
    mapping_version: Option<i64>,
    event_topic: String,
    event_shop_domain: String,
    event_payload: Vec<u8>,
    #[sqlx(flatten)]
    d365: D365ConnectionRow,
}

/// [`ConnectionRow`] under `d365_`-prefixed names, to be read beside a pair's own columns.
#[derive(sqlx::FromRow)]
struct D365ConnectionRow {
    #[sqlx(rename = "d365_id")]
    id: ConnectionId,
    #[sqlx(rename = "d365_tenant_id")]
    tenant_id: TenantId,
    #[sqlx(rename = "d365_kind")]
    kind: String,
    #[sqlx(rename = "d365_name")]
    name: String,
    #[sqlx(rename = "d365_sandbox")]
    sandbox: bool,
    #[sqlx(rename = "d365_settings")]
    settings: Json<serde_json::Value>,
    #[sqlx(rename = "d365_test_status")]
    test_status: String,
    #[sqlx(rename = "d365_test_message")]
    test_message: Option<String>,
    #[sqlx(rename = "d365_tested_at")]
    tested_at: Option<DateTime<Utc>>,
    #[sqlx(rename = "d365_created_at")]
    created_at: DateTime<Utc>,
    #[sqlx(rename = "d365_updated_at")]
    updated_at: DateTime<Utc>,
}

impl From<D365ConnectionRow> for ConnectionRow {
    fn from(row: D365ConnectionRow) -> Self {
        ConnectionRow {
            id: row.id,
            tenant_id: row.tenant_id,
            kind: row.kind,
            name: row.name,
            sandbox: row.sandbox,
            settings: row.settings,
            test_status: row.test_status,
            test_message: row.test_message,
            tested_at: row.tested_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const PAIR_COLUMNS: &str = "id, tenant_id, name, shopify_connection_id, d365_connection_id, environment, status, \
                            pause_reason, flows, created_at, updated_at";

/// What it takes to create a pair.
#[derive(Debug, Clone)]
pub struct NewPair {
    /// Display name.
    pub name: String,
    /// The Shopify connection (same tenant).
    pub shopify_connection_id: ConnectionId,
    /// The D365 connection (same tenant).
    pub d365_connection_id: ConnectionId,
    /// `sandbox` or `production`.
    pub environment: String,
    /// Flows switched on.
    pub flows: Vec<String>,
}

/// A Shopify webhook subscription registered for a pair.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PairWebhook {
    /// Topic, e.g. `ORDERS_CREATE`.
    pub topic: String,
    /// Shopify's subscription id (`gid://shopify/WebhookSubscription/…`).
    pub subscription_id: String,
    /// Where Shopify delivers.
    pub callback_url: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Creates a connection; a taken name is `Conflict { constraint: "uq_connections_tenant_id_name" }`.
    pub async fn create_connection(
        &self,
        tenant: TenantId,
        new: &NewConnection,
    ) -> Result<Connection, StoreError> {
        let now = Utc::now();
        let sql = format!(
            "INSERT INTO connections (id, tenant_id, kind, name, sandbox, settings, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {CONNECTION_COLUMNS}"
        );
        let row: ConnectionRow = on_write!(self, pool => {
            sqlx::query_as(&sql)
                .bind(ConnectionId::new())
                .bind(tenant)
                .bind(new.kind.as_str())
                .bind(new.name.trim())
                .bind(new.sandbox)
                .bind(Json(&new.settings))
                .bind(now)
                .fetch_one(pool)
                .await
        })?;
        row.try_into()
    }

    /// One of the tenant's connections.
    pub async fn connection(
        &self,
        tenant: TenantId,
        id: ConnectionId,
    ) -> Result<Option<Connection>, StoreError> {
        let sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections WHERE tenant_id = $1 AND id = $2"
        );
        let row: Option<ConnectionRow> = on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).bind(id).fetch_optional(pool).await)?;
        row.map(Connection::try_from).transpose()
    }

    /// The tenant's connections by name.
    pub async fn list_connections(&self, tenant: TenantId) -> Result<Vec<Connection>, StoreError> {
        let sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections WHERE tenant_id = $1 ORDER BY name, id"
        );
        let rows: Vec<ConnectionRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).fetch_all(pool).await)?;
        rows.into_iter().map(Connection::try_from).collect()
    }

    /// Replaces a connection's name and settings.
    pub async fn update_connection(
        &self,
        tenant: TenantId,
        id: ConnectionId,
        name: &str,
        settings: &serde_json::Value,
    ) -> Result<Connection, StoreError> {
        let sql = format!(
            "UPDATE connections SET name = $3, settings = $4, test_status = 'untested', updated_at = $5 \
             WHERE tenant_id = $1 AND id = $2 RETURNING {CONNECTION_COLUMNS}"
        );
        let row: Option<ConnectionRow> = on_write!(self, pool => {
            sqlx::query_as(&sql).bind(tenant).bind(id).bind(name.trim()).bind(Json(settings)).bind(Utc::now()).fetch_optional(pool).await
        })?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Marks a secret change on the connection (its test result no longer holds).
    pub async fn touch_connection(
        &self,
        tenant: TenantId,
        id: ConnectionId,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE connections SET test_status = 'untested', updated_at = $3 WHERE tenant_id = $1 AND id = $2";
        let rows = on_write!(self, pool => {
            sqlx::query(sql).bind(tenant).bind(id).bind(Utc::now()).execute(pool).await.map(|r| r.rows_affected())
        })?;
        if rows == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    /// Records the result of "Test connection".
    pub async fn record_connection_test(
        &self,
        tenant: TenantId,
        id: ConnectionId,
        ok: bool,
        message: &str,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE connections SET test_status = $3, test_message = $4, tested_at = $5 WHERE tenant_id = $1 AND id = $2";
        let status = if ok { "ok" } else { "failed" };
        on_write!(self, pool => {
            sqlx::query(sql).bind(tenant).bind(id).bind(status).bind(message).bind(Utc::now()).execute(pool).await.map(|_| ())
        })?;
        Ok(())
    }

    /// Deletes a connection that no pair uses.
    pub async fn delete_connection(
        &self,
        tenant: TenantId,
        id: ConnectionId,
    ) -> Result<(), StoreError> {
        let used = "SELECT COUNT(*) FROM pairs WHERE tenant_id = $1 AND (shopify_connection_id = $2 OR d365_connection_id = $2)";
        let count: i64 = on_pool!(self, pool => sqlx::query_scalar(used).bind(tenant).bind(id).fetch_one(pool).await)?;
        if count > 0 {
            return Err(StoreError::Conflict {
                constraint: "fk_pairs_connection".into(),
            });
        }
        let sql = "DELETE FROM connections WHERE tenant_id = $1 AND id = $2";
        let rows = on_write!(self, pool => sqlx::query(sql).bind(tenant).bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
        if rows == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    /// Creates a pair; both connections must belong to the tenant and be of the right kind.
    pub async fn create_pair(&self, tenant: TenantId, new: &NewPair) -> Result<Pair, StoreError> {
        let shopify = self
            .connection(tenant, new.shopify_connection_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let d365 = self
            .connection(tenant, new.d365_connection_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if shopify.kind != ConnectionKind::Shopify || d365.kind != ConnectionKind::D365 {
            return Err(StoreError::Conflict {
                constraint: "ck_pairs_connection_kinds".into(),
            });
        }
        let now = Utc::now();
        let sql = format!(
            "INSERT INTO pairs (id, tenant_id, name, shopify_connection_id, d365_connection_id, environment, flows, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {PAIR_COLUMNS}"
        );
        let row: PairRow = on_write!(self, pool => {
            sqlx::query_as(&sql)
                .bind(PairId::new())
                .bind(tenant)
                .bind(new.name.trim())
                .bind(new.shopify_connection_id)
                .bind(new.d365_connection_id)
                .bind(&new.environment)
                .bind(Json(&new.flows))
                .bind(now)
                .fetch_one(pool)
                .await
        })?;
        row.try_into()
    }

    /// A run's pair, its tenant's status, its flow's published mapping version, its event and
    /// the pair's D365 connection: what a worker reads before and for processing the run, in
    /// one round trip instead of six. `None` when the run is gone.
    pub async fn run_context(
        &self,
        tenant: TenantId,
        run: RunId,
    ) -> Result<Option<RunContext>, StoreError> {
        let pair_columns = qualified(PAIR_COLUMNS, "p", "");
        let d365_columns = qualified(CONNECTION_COLUMNS, "c", "d365_");
        // The joins are inner: a pair's connection cannot be deleted while the pair refers to
        // it, and deleting an event deletes its runs.
        let sql = format!(
            "SELECT {pair_columns}, t.status AS tenant_status, s.status AS subscription_status, \
             (SELECT MAX(m.version) FROM mapping_versions m WHERE m.tenant_id = r.tenant_id AND m.pair_id = r.pair_id AND m.flow = r.flow) AS mapping_version, \
             e.topic AS event_topic, e.shop_domain AS event_shop_domain, e.payload AS event_payload, {d365_columns} \
             FROM runs r JOIN pairs p ON p.id = r.pair_id AND p.tenant_id = r.tenant_id JOIN tenants t ON t.id = r.tenant_id \
             JOIN inbox e ON e.id = r.inbox_id AND e.tenant_id = r.tenant_id \
             JOIN connections c ON c.id = p.d365_connection_id AND c.tenant_id = r.tenant_id \
             LEFT JOIN subscriptions s ON s.tenant_id = r.tenant_id \
             WHERE r.tenant_id = $1 AND r.id = $2"
        );
        let row: Option<RunContextRow> = on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).bind(run).fetch_optional(pool).await)?;
        row.map(|row| {
            Ok(RunContext {
                hold: crate::billing::hold_reason(Some((
                    row.tenant_status.as_str(),
                    row.subscription_status.as_deref(),
                ))),
                pair: row.pair.try_into()?,
                mapping_version: row.mapping_version,
                event: RunEvent {
                    topic: row.event_topic,
                    shop_domain: row.event_shop_domain,
                    payload: row.event_payload,
                },
                d365: ConnectionRow::from(row.d365).try_into()?,
            })
        })
        .transpose()
    }

    /// One of the tenant's pairs.
    pub async fn pair(&self, tenant: TenantId, id: PairId) -> Result<Option<Pair>, StoreError> {
        let sql = format!("SELECT {PAIR_COLUMNS} FROM pairs WHERE tenant_id = $1 AND id = $2");
        let row: Option<PairRow> = on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).bind(id).fetch_optional(pool).await)?;
        row.map(Pair::try_from).transpose()
    }

    /// The tenant's pairs by name.
    pub async fn list_pairs(&self, tenant: TenantId) -> Result<Vec<Pair>, StoreError> {
        let sql =
            format!("SELECT {PAIR_COLUMNS} FROM pairs WHERE tenant_id = $1 ORDER BY name, id");
        let rows: Vec<PairRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).fetch_all(pool).await)?;
        rows.into_iter().map(Pair::try_from).collect()
    }

    /// Active pairs using a connection (webhook intake routes by connection).
    pub async fn pairs_using_connection(
        &self,
        tenant: TenantId,
        connection: ConnectionId,
    ) -> Result<Vec<Pair>, StoreError> {
        let sql = format!(
            "SELECT {PAIR_COLUMNS} FROM pairs WHERE tenant_id = $1 AND (shopify_connection_id = $2 OR d365_connection_id = $2) ORDER BY name"
        );
        let rows: Vec<PairRow> = on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).bind(connection).fetch_all(pool).await)?;
        rows.into_iter().map(Pair::try_from).collect()
    }

    /// Changes name and flows.
    pub async fn update_pair(
        &self,
        tenant: TenantId,
        id: PairId,
        name: &str,
        flows: &[String],
    ) -> Result<Pair, StoreError> {
        let sql = format!(
            "UPDATE pairs SET name = $3, flows = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2 RETURNING {PAIR_COLUMNS}"
        );
        let row: Option<PairRow> = on_write!(self, pool => {
            sqlx::query_as(&sql).bind(tenant).bind(id).bind(name.trim()).bind(Json(flows)).bind(Utc::now()).fetch_optional(pool).await
        })?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Sets the lifecycle state (and the pause reason, cleared when not paused).
    pub async fn set_pair_status(
        &self,
        tenant: TenantId,
        id: PairId,
        status: PairStatus,
        reason: Option<&str>,
    ) -> Result<Pair, StoreError> {
        let sql = format!(
            "UPDATE pairs SET status = $3, pause_reason = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2 RETURNING {PAIR_COLUMNS}"
        );
        let reason = if status == PairStatus::Paused {
            reason
        } else {
            None
        };
        let row: Option<PairRow> = on_write!(self, pool => {
            sqlx::query_as(&sql).bind(tenant).bind(id).bind(status.as_str()).bind(reason).bind(Utc::now()).fetch_optional(pool).await
        })?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// How many pairs of an environment are active or paused (entitlements count these).
    pub async fn count_live_pairs(
        &self,
        tenant: TenantId,
        environment: &str,
    ) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM pairs WHERE tenant_id = $1 AND environment = $2 AND status <> 'draft'";
        let count: i64 = on_pool!(self, pool => sqlx::query_scalar(sql).bind(tenant).bind(environment).fetch_one(pool).await)?;
        Ok(count)
    }

    /// Records a registered webhook subscription (replacing one for the same topic).
    pub async fn save_pair_webhook(
        &self,
        tenant: TenantId,
        pair: PairId,
        webhook: &PairWebhook,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO pair_webhooks (pair_id, tenant_id, topic, subscription_id, callback_url, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (pair_id, topic) DO UPDATE SET \
                   subscription_id = excluded.subscription_id, callback_url = excluded.callback_url, created_at = excluded.created_at";
        on_write!(self, pool => {
            sqlx::query(sql)
                .bind(pair)
                .bind(tenant)
                .bind(&webhook.topic)
                .bind(&webhook.subscription_id)
                .bind(&webhook.callback_url)
                .bind(webhook.created_at)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// The pair's registered subscriptions.
    pub async fn pair_webhooks(
        &self,
        tenant: TenantId,
        pair: PairId,
    ) -> Result<Vec<PairWebhook>, StoreError> {
        let sql = "SELECT topic, subscription_id, callback_url, created_at FROM pair_webhooks WHERE tenant_id = $1 AND pair_id = $2 ORDER BY topic";
        let rows = on_pool!(self, pool => sqlx::query_as(sql).bind(tenant).bind(pair).fetch_all(pool).await)?;
        Ok(rows)
    }

    /// Forgets one registered subscription.
    pub async fn delete_pair_webhook(
        &self,
        tenant: TenantId,
        pair: PairId,
        topic: &str,
    ) -> Result<(), StoreError> {
        let sql = "DELETE FROM pair_webhooks WHERE tenant_id = $1 AND pair_id = $2 AND topic = $3";
        on_write!(self, pool => sqlx::query(sql).bind(tenant).bind(pair).bind(topic).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Stores a Shopify OAuth state nonce (hashed).
    pub async fn create_oauth_state(
        &self,
        tenant: TenantId,
        state_hash: &str,
        shop_domain: &str,
        created_by: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO oauth_states (state_hash, tenant_id, shop_domain, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)";
        on_write!(self, pool => {
            sqlx::query(sql).bind(state_hash).bind(tenant).bind(shop_domain).bind(created_by).bind(Utc::now()).bind(expires_at).execute(pool).await.map(|_| ())
        })?;
        Ok(())
    }

    /// Uses up a state nonce atomically; returns its tenant, shop and creator when it was valid.
    pub async fn take_oauth_state(
        &self,
        state_hash: &str,
    ) -> Result<Option<(TenantId, String, String)>, StoreError> {
        let now = Utc::now();
        let sql = "UPDATE oauth_states SET used_at = $2 WHERE state_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                   RETURNING tenant_id, shop_domain, created_by";
        let row: Option<(TenantId, String, String)> = on_write!(self, pool => sqlx::query_as(sql).bind(state_hash).bind(now).fetch_optional(pool).await)?;
        Ok(row)
    }
}

/// A column list qualified by a table alias, each column named `{prefix}{column}`: how a
/// row type is read beside another table's columns of the same names.
pub(crate) fn qualified(columns: &str, table: &str, prefix: &str) -> String {
    columns
        .split(',')
        .map(|column| {
            let column = column.trim();
            format!("{table}.{column} AS {prefix}{column}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}
