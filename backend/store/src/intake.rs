//! The webhook intake's write path. An event is stored together with the runs it routes to,
//! in one transaction, and deliveries arriving together are committed together (group
//! commit): one transaction and one multi-row statement per table for a whole group instead
//! of several statements per delivery. Under load that is what lets the intake keep up, above
//! all on SQLite, whose single writer every statement queues for.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::Utc;
use sqlx::QueryBuilder;
use sqlx::types::Json;
use tokio::sync::oneshot;

use crate::connections::{CONNECTION_COLUMNS, ConnectionRow, qualified};
use crate::pool::{on_pool, on_write};
use crate::{ConnectionId, InboxId, NewInboxEvent, PairId, RunId, Store, StoreError, TenantId};

/// Most deliveries committed in one transaction; 14 parameters each stays far below either
/// engine's limit on bound parameters.
const MAX_GROUP: usize = 64;

/// What the intake needs to know to route a connection's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeRoutes {
    /// Why events must be held: the tenant or its subscription is suspended or lapsed.
    pub hold: Option<&'static str>,
    /// The active pairs reading from the connection, by name.
    pub active_pairs: Vec<ActivePair>,
}

/// An active pair and the flows switched on in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivePair {
    /// The pair.
    pub id: PairId,
    /// Its flows, e.g. `orders`.
    pub flows: Vec<String>,
}

/// A run to create with its event.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    /// The pair whose flow processes the event.
    pub pair_id: PairId,
    /// The flow.
    pub flow: String,
    /// The Shopify reference shown in run lists (the order's name).
    pub shopify_ref: Option<String>,
}

/// A verified delivery to store, with its routing decided.
#[derive(Debug, Clone)]
pub struct IntakeEvent {
    /// Owner.
    pub tenant: TenantId,
    /// The event; its status says what became of it (`done` when routed to `runs`).
    pub event: NewInboxEvent,
    /// The runs to create, in the same transaction, when the event is new.
    pub runs: Vec<PlannedRun>,
}

/// What storing a delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntakeStored {
    /// A new event, with the runs created for it (to be dispatched).
    Stored {
        /// The event.
        inbox_id: InboxId,
        /// Its runs.
        runs: Vec<RunId>,
    },
    /// The same (connection, webhook id) was stored before: nothing changed.
    Duplicate(InboxId),
}

/// Deliveries waiting for the next group commit.
#[derive(Default)]
pub(crate) struct IntakeQueue {
    state: Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    pending: Vec<Pending>,
    /// Whether a task is committing groups; it takes whatever arrived meanwhile next.
    committing: bool,
}

struct Pending {
    event: IntakeEvent,
    reply: oneshot::Sender<Result<IntakeStored, StoreError>>,
}

/// A webhook's connection with what routing its events needs.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    /// The connection named in the webhook's URL.
    pub connection: crate::Connection,
    /// Its routes.
    pub routes: IntakeRoutes,
}

#[derive(sqlx::FromRow)]
struct WebhookTargetRow {
    #[sqlx(flatten)]
    connection: ConnectionRow,
    tenant_status: String,
    subscription_status: Option<String>,
    pair_id: Option<PairId>,
    pair_flows: Option<Json<Vec<String>>>,
}

/// Routes from the rows of one tenant and its active pairs (at least one row; without
/// active pairs, one row whose pair columns are empty).
fn routes_of(rows: impl IntoIterator<Item = RouteRow>) -> IntakeRoutes {
    let mut rows = rows.into_iter().peekable();
    let hold = crate::billing::hold_reason(rows.peek().map(|row| {
        (
            row.tenant_status.as_str(),
            row.subscription_status.as_deref(),
        )
    }));
    let active_pairs = rows
        .filter_map(|row| {
            Some(ActivePair {
                id: row.pair_id?,
                flows: row.pair_flows.map(|f| f.0).unwrap_or_default(),
            })
        })
        .collect();
    IntakeRoutes { hold, active_pairs }
}

/// One row of a routing query: the tenant's state and one active pair, if any.
#[derive(sqlx::FromRow)]
struct RouteRow {
    tenant_status: String,
    subscription_status: Option<String>,
    pair_id: Option<PairId>,
    pair_flows: Option<Json<Vec<String>>>,
}

impl Store {
    /// The connection a webhook URL names, with its routes: one query for the intake, which
    /// knows only the connection's id. The signature check that follows is what
    /// authenticates the call.
    pub async fn webhook_target(
        &self,
        connection: ConnectionId,
    ) -> Result<Option<WebhookTarget>, StoreError> {
        let columns = qualified(CONNECTION_COLUMNS, "c", "");
        let sql = format!(
            "SELECT {columns}, t.status AS tenant_status, s.status AS subscription_status, \
             p.id AS pair_id, p.flows AS pair_flows FROM connections c \
             JOIN tenants t ON t.id = c.tenant_id \
             LEFT JOIN subscriptions s ON s.tenant_id = c.tenant_id \
             LEFT JOIN pairs p ON p.tenant_id = c.tenant_id AND p.shopify_connection_id = c.id AND p.status = 'active' \
             WHERE c.id = $1 ORDER BY p.name"
        );
        let rows: Vec<WebhookTargetRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(connection).fetch_all(pool).await)?;
        let mut connection = None;
        let mut route_rows = Vec::with_capacity(rows.len());
        for row in rows {
            if connection.is_none() {
                connection = Some(crate::Connection::try_from(row.connection)?);
            }
            route_rows.push(RouteRow {
                tenant_status: row.tenant_status,
                subscription_status: row.subscription_status,
                pair_id: row.pair_id,
                pair_flows: row.pair_flows,
            });
        }
        Ok(connection.map(|connection| WebhookTarget {
            connection,
            routes: routes_of(route_rows),
        }))
    }

    /// Whether a connection's events are held and which active pairs read from it: one query.
    pub async fn intake_routes(
        &self,
        tenant: TenantId,
        connection: ConnectionId,
    ) -> Result<IntakeRoutes, StoreError> {
        let sql = "SELECT t.status AS tenant_status, s.status AS subscription_status, p.id AS pair_id, p.flows AS pair_flows \
                   FROM tenants t \
                   LEFT JOIN subscriptions s ON s.tenant_id = t.id \
                   LEFT JOIN pairs p ON p.tenant_id = t.id AND p.shopify_connection_id = $2 AND p.status = 'active' \
                   WHERE t.id = $1 ORDER BY p.name";
        let rows: Vec<RouteRow> = on_pool!(self, pool => sqlx::query_as(sql).bind(tenant).bind(connection).fetch_all(pool).await)?;
        Ok(routes_of(rows))
    }

    /// Why the intake must hold a connection's events instead of routing them: the tenant is
    /// suspended, its subscription is suspended or lapsed, or no active pair reads from the
    /// connection.
    pub async fn intake_hold_reason(
        &self,
        tenant: TenantId,
        connection: ConnectionId,
    ) -> Result<Option<&'static str>, StoreError> {
        let routes = self.intake_routes(tenant, connection).await?;
        Ok(routes.hold.or_else(|| {
            routes
                .active_pairs
                .is_empty()
                .then_some("no active pair for this connection")
        }))
    }

    /// Stores a delivery once, with its runs, and answers after the commit. Concurrent calls
    /// are committed together; should a group fail, each of its deliveries is tried alone so
    /// that one bad delivery fails only itself.
    pub async fn store_event(&self, event: IntakeEvent) -> Result<IntakeStored, StoreError> {
        let (reply, answer) = oneshot::channel();
        let lead = {
            let mut state = self
                .intake
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            state.pending.push(Pending { event, reply });
            !std::mem::replace(&mut state.committing, true)
        };
        if lead {
            // A task of its own: the caller's request may be dropped (the sender hung up), and
            // the others waiting must still be committed.
            let store = self.clone();
            tokio::spawn(async move { store.commit_pending().await });
        }
        answer
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::WorkerCrashed))?
    }

    async fn commit_pending(&self) {
        let queue = Arc::clone(&self.intake);
        let _on_panic = FailOnPanic(&queue);
        loop {
            let group: Vec<Pending> = {
                let mut state = queue.state.lock().unwrap_or_else(PoisonError::into_inner);
                if state.pending.is_empty() {
                    state.committing = false;
                    return;
                }
                let take = state.pending.len().min(MAX_GROUP);
                state.pending.drain(..take).collect()
            };
            let events: Vec<&IntakeEvent> = group.iter().map(|p| &p.event).collect();
            match self.commit_group(&events).await {
                Ok(results) => {
                    for (pending, result) in group.into_iter().zip(results) {
                        let _ = pending.reply.send(Ok(result));
                    }
                }
                Err(error) if group.len() == 1 => {
                    if let Some(pending) = group.into_iter().next() {
                        let _ = pending.reply.send(Err(error));
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, deliveries = group.len(), "a group of webhooks failed to commit; committing each alone");
                    for pending in group {
                        let result = self
                            .commit_group(&[&pending.event])
                            .await
                            .and_then(|mut one| one.pop().ok_or(StoreError::NotFound));
                        let _ = pending.reply.send(result);
                    }
                }
            }
        }
    }

    /// One transaction: the events (new ones only), then the runs of the new ones.
    async fn commit_group(&self, events: &[&IntakeEvent]) -> Result<Vec<IntakeStored>, StoreError> {
        let now = Utc::now();
        let ids: Vec<InboxId> = events.iter().map(|_| InboxId::new()).collect();
        let run_ids: Vec<Vec<RunId>> = events
            .iter()
            .map(|e| e.runs.iter().map(|_| RunId::new()).collect())
            .collect();
        let existing =
            "SELECT id FROM inbox WHERE connection_id = $1 AND webhook_id = $2 AND tenant_id = $3";
        let results = on_write!(self, pool => {
            async {
                let mut tx = pool.begin().await?;
                let mut insert = QueryBuilder::new(
                    "INSERT INTO inbox (id, tenant_id, connection_id, webhook_id, topic, shop_domain, api_version, \
                     event_id, triggered_at, payload, status, error, received_at, updated_at) ",
                );
                insert.push_values(events.iter().zip(&ids), |mut row, (e, id)| {
                    let event = &e.event;
                    row.push_bind(*id)
                        .push_bind(e.tenant)
                        .push_bind(event.connection_id)
                        .push_bind(&event.webhook_id)
                        .push_bind(&event.topic)
                        .push_bind(&event.shop_domain)
                        .push_bind(&event.api_version)
                        .push_bind(&event.event_id)
                        .push_bind(&event.triggered_at)
                        .push_bind(&event.payload)
                        .push_bind(event.status.as_str())
                        .push_bind(&event.error)
                        .push_bind(now)
                        .push_bind(now);
                });
                insert.push(" ON CONFLICT (connection_id, webhook_id) DO NOTHING RETURNING id");
                let inserted: HashSet<InboxId> = insert
                    .build_query_scalar()
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .collect();
                let mut results = Vec::with_capacity(events.len());
                let mut runs = Vec::new();
                for ((e, id), run_ids) in events.iter().zip(&ids).zip(&run_ids) {
                    if inserted.contains(id) {
                        runs.extend(e.runs.iter().zip(run_ids).map(|(run, run_id)| (e.tenant, *id, run, *run_id)));
                        results.push(IntakeStored::Stored { inbox_id: *id, runs: run_ids.clone() });
                    } else {
                        // A repeated delivery, or a second copy within this group.
                        let first: InboxId = sqlx::query_scalar(existing)
                            .bind(e.event.connection_id)
                            .bind(&e.event.webhook_id)
                            .bind(e.tenant)
                            .fetch_one(&mut *tx)
                            .await?;
                        results.push(IntakeStored::Duplicate(first));
                    }
                }
                if !runs.is_empty() {
                    let mut insert = QueryBuilder::new(
                        "INSERT INTO runs (id, tenant_id, pair_id, inbox_id, flow, status, shopify_ref, created_at, updated_at, dispatched_at) ",
                    );
                    insert.push_values(&runs, |mut row, (tenant, inbox_id, run, run_id)| {
                        row.push_bind(*run_id)
                            .push_bind(*tenant)
                            .push_bind(run.pair_id)
                            .push_bind(*inbox_id)
                            .push_bind(&run.flow)
                            .push_bind("queued")
                            .push_bind(&run.shopify_ref)
                            .push_bind(now)
                            .push_bind(now)
                            .push_bind(now);
                    });
                    insert.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(results)
            }.await
        })?;
        Ok(results)
    }
}

/// Should the committing task panic, the deliveries still waiting are answered with an error
/// (Shopify delivers them again) and the next delivery starts a new committing task.
struct FailOnPanic<'a>(&'a IntakeQueue);

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.pending.clear();
            state.committing = false;
        }
    }
}
