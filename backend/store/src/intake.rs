//! The webhook intake's write path. An event is stored together with the runs it routes to,
//! in one transaction, and deliveries arriving together are committed together (group
//! commit): one transaction and one multi-row statement per table for a whole group instead
//! of several statements per delivery. Under load that is what lets the intake keep up, above
//! all on SQLite, whose single writer every statement queues for.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;
use sqlx::types::Json;
use tokio::sync::oneshot;

use crate::connections::{CONNECTION_COLUMNS, ConnectionRow, qualified};
use crate::pool::{Pool, on_pool};
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

impl IntakeRoutes {
    /// Why the connection's events must be held instead of routed: the tenant or its
    /// subscription is held, or no active pair reads from the connection.
    pub fn hold_reason(&self) -> Option<&'static str> {
        self.hold.or_else(|| {
            self.active_pairs
                .is_empty()
                .then_some("no active pair for this connection")
        })
    }
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
        Ok(self.intake_routes(tenant, connection).await?.hold_reason())
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
        let runs_of = |inserted: &HashSet<InboxId>| -> Vec<NewRunRow<'_>> {
            events
                .iter()
                .zip(&ids)
                .zip(&run_ids)
                .filter(|((_, id), _)| inserted.contains(id))
                .flat_map(|((e, id), run_ids)| {
                    e.runs.iter().zip(run_ids).map(|(run, run_id)| NewRunRow {
                        id: *run_id,
                        tenant: e.tenant,
                        inbox_id: *id,
                        run,
                    })
                })
                .collect()
        };
        let inserted = match &self.pool {
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let inserted = insert_events_postgres(&mut tx, events, &ids, now).await?;
                let runs = runs_of(&inserted);
                if !runs.is_empty() {
                    insert_runs_postgres(&mut tx, &runs, now).await?;
                }
                tx.commit().await?;
                inserted
            }
            Pool::Sqlite { write, .. } => {
                let mut tx = write.begin().await?;
                let inserted = insert_events_sqlite(&mut tx, events, &ids, now).await?;
                let runs = runs_of(&inserted);
                if !runs.is_empty() {
                    insert_runs_sqlite(&mut tx, &runs, now).await?;
                }
                tx.commit().await?;
                inserted
            }
        };
        let mut results = Vec::with_capacity(events.len());
        for (index, (e, id)) in events.iter().zip(&ids).enumerate() {
            if inserted.contains(id) {
                results.push(IntakeStored::Stored {
                    inbox_id: *id,
                    runs: run_ids[index].clone(),
                });
                continue;
            }
            // A second copy within this group names the group's stored one; a repeated
            // delivery, the row committed before (a conflicting insert waits for the other
            // transaction, so that row is committed by now).
            let same = |other: &&IntakeEvent| {
                other.event.connection_id == e.event.connection_id
                    && other.event.webhook_id == e.event.webhook_id
            };
            let in_group = events
                .iter()
                .zip(&ids)
                .find(|(other, other_id)| same(other) && inserted.contains(other_id))
                .map(|(_, other_id)| *other_id);
            let first = match in_group {
                Some(first) => first,
                None => {
                    let existing = "SELECT id FROM inbox WHERE connection_id = $1 AND webhook_id = $2 AND tenant_id = $3";
                    on_pool!(self, pool => {
                        sqlx::query_scalar(existing)
                            .bind(e.event.connection_id)
                            .bind(&e.event.webhook_id)
                            .bind(e.tenant)
                            .fetch_one(pool)
                            .await
                    })?
                }
            };
            results.push(IntakeStored::Duplicate(first));
        }
        Ok(results)
    }
}

/// A run to insert with its group.
struct NewRunRow<'a> {
    id: RunId,
    tenant: TenantId,
    inbox_id: InboxId,
    run: &'a PlannedRun,
}

/// The group's events in one statement whose text never changes (arrays, not one `VALUES`
/// row per event): prepared and planned once per connection. A `VALUES` list of each group
/// size was a new statement for PostgreSQL to parse and plan, hundreds of parameters each
/// time. Returns the ids of the events that were new.
async fn insert_events_postgres(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    events: &[&IntakeEvent],
    ids: &[InboxId],
    now: DateTime<Utc>,
) -> Result<HashSet<InboxId>, sqlx::Error> {
    let sql = "INSERT INTO inbox (id, tenant_id, connection_id, webhook_id, topic, shop_domain, api_version, \
               event_id, triggered_at, payload, status, error, received_at, updated_at) \
               SELECT id, tenant_id, connection_id, webhook_id, topic, shop_domain, api_version, \
               event_id, triggered_at, payload, status, error, $13, $13 \
               FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], \
                           $8::text[], $9::text[], $10::bytea[], $11::text[], $12::text[]) \
                 AS e(id, tenant_id, connection_id, webhook_id, topic, shop_domain, api_version, \
                      event_id, triggered_at, payload, status, error) \
               ON CONFLICT (connection_id, webhook_id) DO NOTHING RETURNING id";
    let column = |f: fn(&NewInboxEvent) -> &str| -> Vec<&str> {
        events.iter().map(|e| f(&e.event)).collect()
    };
    let optional = |f: fn(&NewInboxEvent) -> Option<&str>| -> Vec<Option<&str>> {
        events.iter().map(|e| f(&e.event)).collect()
    };
    let inserted: Vec<InboxId> = sqlx::query_scalar(sql)
        .bind(ids.iter().map(|id| id.0).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.tenant.0).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|e| e.event.connection_id.0)
                .collect::<Vec<_>>(),
        )
        .bind(column(|e| &e.webhook_id))
        .bind(column(|e| &e.topic))
        .bind(column(|e| &e.shop_domain))
        .bind(column(|e| &e.api_version))
        .bind(optional(|e| e.event_id.as_deref()))
        .bind(optional(|e| e.triggered_at.as_deref()))
        .bind(
            events
                .iter()
                .map(|e| e.event.payload.as_slice())
                .collect::<Vec<_>>(),
        )
        .bind(column(|e| e.status.as_str()))
        .bind(optional(|e| e.error.as_deref()))
        .bind(now)
        .fetch_all(&mut **tx)
        .await?;
    Ok(inserted.into_iter().collect())
}

/// The group's runs in one statement of constant text, as [`insert_events_postgres`].
async fn insert_runs_postgres(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    runs: &[NewRunRow<'_>],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO runs (id, tenant_id, pair_id, inbox_id, flow, status, shopify_ref, created_at, updated_at, dispatched_at) \
               SELECT id, tenant_id, pair_id, inbox_id, flow, 'queued', shopify_ref, $7, $7, $7 \
               FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[]) \
                 AS r(id, tenant_id, pair_id, inbox_id, flow, shopify_ref)";
    sqlx::query(sql)
        .bind(runs.iter().map(|r| r.id.0).collect::<Vec<_>>())
        .bind(runs.iter().map(|r| r.tenant.0).collect::<Vec<_>>())
        .bind(runs.iter().map(|r| r.run.pair_id.0).collect::<Vec<_>>())
        .bind(runs.iter().map(|r| r.inbox_id.0).collect::<Vec<_>>())
        .bind(runs.iter().map(|r| r.run.flow.as_str()).collect::<Vec<_>>())
        .bind(
            runs.iter()
                .map(|r| r.run.shopify_ref.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// SQLite prepares in process and cheaply: one multi-row `VALUES` per group.
async fn insert_events_sqlite(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    events: &[&IntakeEvent],
    ids: &[InboxId],
    now: DateTime<Utc>,
) -> Result<HashSet<InboxId>, sqlx::Error> {
    let mut insert = QueryBuilder::new(
        "INSERT INTO inbox (id, tenant_id, connection_id, webhook_id, topic, shop_domain, api_version, \
         event_id, triggered_at, payload, status, error, received_at, updated_at) ",
    );
    insert.push_values(events.iter().zip(ids), |mut row, (e, id)| {
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
    let inserted: Vec<InboxId> = insert.build_query_scalar().fetch_all(&mut **tx).await?;
    Ok(inserted.into_iter().collect())
}

/// The group's runs, as [`insert_events_sqlite`].
async fn insert_runs_sqlite(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    runs: &[NewRunRow<'_>],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut insert = QueryBuilder::new(
        "INSERT INTO runs (id, tenant_id, pair_id, inbox_id, flow, status, shopify_ref, created_at, updated_at, dispatched_at) ",
    );
    insert.push_values(runs, |mut row, run| {
        row.push_bind(run.id)
            .push_bind(run.tenant)
            .push_bind(run.run.pair_id)
            .push_bind(run.inbox_id)
            .push_bind(&run.run.flow)
            .push_bind("queued")
            .push_bind(&run.run.shopify_ref)
            .push_bind(now)
            .push_bind(now)
            .push_bind(now);
    });
    insert.build().execute(&mut **tx).await?;
    Ok(())
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
