//! The inbox: every incoming webhook, stored before it is acknowledged, deduplicated on
//! (connection, webhook id).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::pool::{on_pool, on_write};
use crate::{ConnectionId, InboxId, Store, StoreError, TenantId};

/// What became of an incoming event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InboxStatus {
    /// Stored, waiting for its flow.
    Received,
    /// Stored but held: the pair is paused or the tenant suspended.
    Held,
    /// Could not be processed (e.g. malformed JSON); `error` says why.
    Failed,
    /// Processed.
    Done,
}

impl InboxStatus {
    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            InboxStatus::Received => "received",
            InboxStatus::Held => "held",
            InboxStatus::Failed => "failed",
            InboxStatus::Done => "done",
        }
    }

    fn parse(value: &str) -> Result<Self, StoreError> {
        match value {
            "received" => Ok(InboxStatus::Received),
            "held" => Ok(InboxStatus::Held),
            "failed" => Ok(InboxStatus::Failed),
            "done" => Ok(InboxStatus::Done),
            other => Err(StoreError::Corrupt {
                what: "inbox.status",
                detail: other.to_owned(),
            }),
        }
    }
}

/// An event to store.
#[derive(Debug, Clone)]
pub struct NewInboxEvent {
    /// The connection it came through.
    pub connection_id: ConnectionId,
    /// `X-Shopify-Webhook-Id`.
    pub webhook_id: String,
    /// e.g. `orders/create`.
    pub topic: String,
    /// `X-Shopify-Shop-Domain`.
    pub shop_domain: String,
    /// `X-Shopify-API-Version`.
    pub api_version: String,
    /// `X-Shopify-Event-Id`.
    pub event_id: Option<String>,
    /// `X-Shopify-Triggered-At`.
    pub triggered_at: Option<String>,
    /// The raw body, exactly as received.
    pub payload: Vec<u8>,
    /// Initial status.
    pub status: InboxStatus,
    /// Why it failed, for `Failed`.
    pub error: Option<String>,
}

/// A stored event.
#[derive(Debug, Clone, Serialize)]
pub struct InboxEvent {
    /// Primary key.
    pub id: InboxId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Connection.
    pub connection_id: ConnectionId,
    /// Deduplication key.
    pub webhook_id: String,
    /// Topic.
    pub topic: String,
    /// Shop.
    pub shop_domain: String,
    /// API version of the payload.
    pub api_version: String,
    /// Raw body.
    #[serde(skip)]
    pub payload: Vec<u8>,
    /// Status.
    pub status: InboxStatus,
    /// Error, if failed.
    pub error: Option<String>,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct InboxRow {
    id: InboxId,
    tenant_id: TenantId,
    connection_id: ConnectionId,
    webhook_id: String,
    topic: String,
    shop_domain: String,
    api_version: String,
    payload: Vec<u8>,
    status: String,
    error: Option<String>,
    received_at: DateTime<Utc>,
}

impl TryFrom<InboxRow> for InboxEvent {
    type Error = StoreError;
    fn try_from(row: InboxRow) -> Result<Self, StoreError> {
        Ok(InboxEvent {
            id: row.id,
            tenant_id: row.tenant_id,
            connection_id: row.connection_id,
            webhook_id: row.webhook_id,
            topic: row.topic,
            shop_domain: row.shop_domain,
            api_version: row.api_version,
            payload: row.payload,
            status: InboxStatus::parse(&row.status)?,
            error: row.error,
            received_at: row.received_at,
        })
    }
}

const INBOX_COLUMNS: &str = "id, tenant_id, connection_id, webhook_id, topic, shop_domain, api_version, payload, status, error, received_at";

/// The outcome of storing an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxInsert {
    /// A new event.
    Stored(InboxId),
    /// The same (connection, webhook id) was stored before: nothing changed.
    Duplicate(InboxId),
}

impl Store {
    /// Stores an event once; a repeated delivery is reported as `Duplicate` and changes nothing.
    pub async fn insert_inbox(
        &self,
        tenant: TenantId,
        event: &NewInboxEvent,
    ) -> Result<InboxInsert, StoreError> {
        let now = Utc::now();
        let sql = "INSERT INTO inbox (id, tenant_id, connection_id, webhook_id, topic, shop_domain, api_version, event_id, \
                   triggered_at, payload, status, error, received_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) \
                   ON CONFLICT (connection_id, webhook_id) DO NOTHING RETURNING id";
        let inserted: Option<InboxId> = on_write!(self, pool => {
            sqlx::query_scalar(sql)
                .bind(InboxId::new())
                .bind(tenant)
                .bind(event.connection_id)
                .bind(&event.webhook_id)
                .bind(&event.topic)
                .bind(&event.shop_domain)
                .bind(&event.api_version)
                .bind(&event.event_id)
                .bind(&event.triggered_at)
                .bind(&event.payload)
                .bind(event.status.as_str())
                .bind(&event.error)
                .bind(now)
                .fetch_optional(pool)
                .await
        })?;
        if let Some(id) = inserted {
            return Ok(InboxInsert::Stored(id));
        }
        let existing =
            "SELECT id FROM inbox WHERE connection_id = $1 AND webhook_id = $2 AND tenant_id = $3";
        let id: InboxId = on_pool!(self, pool => {
            sqlx::query_scalar(existing).bind(event.connection_id).bind(&event.webhook_id).bind(tenant).fetch_one(pool).await
        })?;
        Ok(InboxInsert::Duplicate(id))
    }

    /// One of the tenant's events.
    pub async fn inbox_event(
        &self,
        tenant: TenantId,
        id: InboxId,
    ) -> Result<Option<InboxEvent>, StoreError> {
        let sql = format!("SELECT {INBOX_COLUMNS} FROM inbox WHERE tenant_id = $1 AND id = $2");
        let row: Option<InboxRow> = on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).bind(id).fetch_optional(pool).await)?;
        row.map(InboxEvent::try_from).transpose()
    }

    /// The tenant's newest events.
    pub async fn list_inbox(
        &self,
        tenant: TenantId,
        limit: u32,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        let sql = format!(
            "SELECT {INBOX_COLUMNS} FROM inbox WHERE tenant_id = $1 ORDER BY received_at DESC, id DESC LIMIT $2"
        );
        let rows: Vec<InboxRow> = on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).bind(i64::from(limit)).fetch_all(pool).await)?;
        rows.into_iter().map(InboxEvent::try_from).collect()
    }

    /// The newest event of a connection whose topic starts with `topic_prefix` (the mapper
    /// previews against it).
    pub async fn latest_inbox_event(
        &self,
        tenant: TenantId,
        connection: ConnectionId,
        topic_prefix: &str,
    ) -> Result<Option<InboxEvent>, StoreError> {
        let sql = format!(
            "SELECT {INBOX_COLUMNS} FROM inbox WHERE tenant_id = $1 AND connection_id = $2 AND topic LIKE $3 \
             ORDER BY received_at DESC, id DESC LIMIT 1"
        );
        let pattern = format!("{}%", topic_prefix.replace(['%', '_'], ""));
        let row: Option<InboxRow> = on_pool!(self, pool => sqlx::query_as(&sql).bind(tenant).bind(connection).bind(&pattern).fetch_optional(pool).await)?;
        row.map(InboxEvent::try_from).transpose()
    }

    /// Releases every held event of the tenant's connections that have an active pair (the
    /// tenant or its subscription resumed); returns their ids.
    pub async fn release_held_inbox_of_tenant(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<InboxId>, StoreError> {
        let sql = "UPDATE inbox SET status = 'received', error = NULL, updated_at = $2 \
                   WHERE tenant_id = $1 AND status = 'held' AND connection_id IN \
                   (SELECT shopify_connection_id FROM pairs WHERE tenant_id = $1 AND status = 'active') RETURNING id";
        let ids = on_write!(self, pool => sqlx::query_scalar(sql).bind(tenant).bind(Utc::now()).fetch_all(pool).await)?;
        Ok(ids)
    }
}

impl Store {
    /// Every stored payload of a connection, for privacy redaction.
    pub async fn inbox_payloads(
        &self,
        tenant: TenantId,
        connection: ConnectionId,
    ) -> Result<Vec<(InboxId, Vec<u8>)>, StoreError> {
        let sql = "SELECT id, payload FROM inbox WHERE tenant_id = $1 AND connection_id = $2";
        let rows: Vec<(InboxId, Vec<u8>)> = on_pool!(self, pool => sqlx::query_as(sql).bind(tenant).bind(connection).fetch_all(pool).await)?;
        Ok(rows)
    }

    /// The payloads of some of the tenant's events (those that exist), in one query.
    pub async fn inbox_payloads_of(
        &self,
        tenant: TenantId,
        ids: &[InboxId],
    ) -> Result<Vec<(InboxId, Vec<u8>)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(InboxId, Vec<u8>)> = on_pool!(self, pool => {
            let mut query =
                sqlx::QueryBuilder::new("SELECT id, payload FROM inbox WHERE tenant_id = ");
            query.push_bind(tenant).push(" AND id IN (");
            let mut list = query.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            query.push(")");
            query.build_query_as().fetch_all(pool).await
        })?;
        Ok(rows)
    }

    /// Replaces stored payloads with `replacement` (personal data removed) and marks them done.
    pub async fn redact_inbox(
        &self,
        tenant: TenantId,
        ids: &[InboxId],
        replacement: &[u8],
    ) -> Result<u64, StoreError> {
        let sql = "UPDATE inbox SET payload = $3, status = 'done', error = 'redacted on request', updated_at = $4 \
                   WHERE tenant_id = $1 AND id = $2";
        let now = Utc::now();
        let mut changed = 0;
        for id in ids {
            changed += on_write!(self, pool => {
                sqlx::query(sql).bind(tenant).bind(*id).bind(replacement).bind(now).execute(pool).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(changed)
    }

    /// Events stored but not yet routed to runs (a held event was released, or a privacy
    /// request), received before `before`, oldest first.
    pub async fn unrouted_inbox(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(TenantId, InboxId)>, StoreError> {
        let sql = "SELECT tenant_id, id FROM inbox WHERE status = 'received' AND updated_at < $1 ORDER BY received_at LIMIT $2";
        let rows = on_pool!(self, pool => sqlx::query_as(sql).bind(before).bind(i64::from(limit)).fetch_all(pool).await)?;
        Ok(rows)
    }

    /// Sets an event's status and error.
    pub async fn set_inbox_status(
        &self,
        tenant: TenantId,
        id: InboxId,
        status: InboxStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE inbox SET status = $3, error = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2";
        on_write!(self, pool => {
            sqlx::query(sql).bind(tenant).bind(id).bind(status.as_str()).bind(error).bind(Utc::now()).execute(pool).await.map(|_| ())
        })?;
        Ok(())
    }

    /// Releases a connection's held events for routing (its pair became active again);
    /// returns how many.
    pub async fn release_held_inbox(
        &self,
        tenant: TenantId,
        connection: ConnectionId,
    ) -> Result<Vec<InboxId>, StoreError> {
        let sql = "UPDATE inbox SET status = 'received', error = NULL, updated_at = $3 \
                   WHERE tenant_id = $1 AND connection_id = $2 AND status = 'held' RETURNING id";
        let ids = on_write!(self, pool => sqlx::query_scalar(sql).bind(tenant).bind(connection).bind(Utc::now()).fetch_all(pool).await)?;
        Ok(ids)
    }
}
