use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply,
};
use redis::{AsyncCommands, Client, RedisError, Value};
use tokio::sync::Mutex;

use crate::{Delivery, DispatchError, Dispatcher, Job};

/// Settings of the Redis Streams dispatcher.
#[derive(Clone)]
pub struct RedisDispatcherOptions {
    /// `redis://…` (may hold a password: never print it).
    pub url: String,
    /// The stream key; every process of one installation must use the same.
    pub stream: String,
    /// The consumer group shared by all workers.
    pub group: String,
    /// This process's consumer name; unique per process so dead consumers can be told apart.
    pub consumer: String,
    /// An entry delivered but not acknowledged for this long is taken over from its consumer.
    pub claim_idle: Duration,
}

impl std::fmt::Debug for RedisDispatcherOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDispatcherOptions")
            .field("url", &"[redacted]")
            .field("stream", &self.stream)
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .field("claim_idle", &self.claim_idle)
            .finish()
    }
}

impl RedisDispatcherOptions {
    /// Defaults for one installation: stream `syncline:jobs`, group `workers`, and a consumer
    /// name made of the host name, process id and a random suffix.
    pub fn new(url: impl Into<String>) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned());
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        RedisDispatcherOptions {
            url: url.into(),
            stream: "syncline:jobs".to_owned(),
            group: "workers".to_owned(),
            consumer: format!("{host}-{}-{}", std::process::id(), &suffix[..8]),
            claim_idle: Duration::from_secs(60),
        }
    }
}

/// Cluster mode's dispatcher: a Redis stream read by a consumer group (`XREADGROUP`), with
/// entries of dead consumers taken over by `XAUTOCLAIM` once idle for `claim_idle`.
///
/// Connections are opened lazily and re-opened after failures, so a process starts (and
/// reports "not ready") while Redis is down, and recovers when it comes back.
pub struct RedisDispatcher {
    client: Client,
    options: RedisDispatcherOptions,
    commands: Mutex<Option<ConnectionManager>>,
    reads: Mutex<ReadState>,
    generation: std::sync::atomic::AtomicU64,
}

struct ReadState {
    connection: Option<ConnectionManager>,
    group_ready: bool,
    claimed: VecDeque<Delivery>,
    last_claim: Option<Instant>,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

fn redis_error(error: RedisError) -> DispatchError {
    // RedisError's Display never includes the URL or password.
    DispatchError::Redis(error.to_string())
}

impl RedisDispatcher {
    /// Validates the URL; connects on first use.
    pub fn new(options: RedisDispatcherOptions) -> Result<Self, DispatchError> {
        let client = Client::open(options.url.as_str()).map_err(|_| {
            DispatchError::Redis("REDIS_URL is not a valid redis:// URL".to_owned())
        })?;
        Ok(RedisDispatcher {
            client,
            options,
            commands: Mutex::new(None),
            reads: Mutex::new(ReadState {
                connection: None,
                group_ready: false,
                claimed: VecDeque::new(),
                last_claim: None,
            }),
            generation: std::sync::atomic::AtomicU64::new(0),
        })
    }

    async fn manager(
        &self,
        response_timeout: Duration,
    ) -> Result<ConnectionManager, DispatchError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response_timeout))
            .set_number_of_retries(2);
        ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(redis_error)
    }

    async fn commands(&self) -> Result<ConnectionManager, DispatchError> {
        let mut slot = self.commands.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        let connection = self.manager(COMMAND_TIMEOUT).await?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// Removes every entry and the group; for tests and `admin` tooling.
    pub async fn purge(&self) -> Result<(), DispatchError> {
        let mut connection = self.commands().await?;
        let _: () = connection
            .del(&self.options.stream)
            .await
            .map_err(redis_error)?;
        self.reads.lock().await.group_ready = false;
        Ok(())
    }

    async fn ensure_group(&self, connection: &mut ConnectionManager) -> Result<(), DispatchError> {
        // "0" rather than "$": entries queued before the first worker started are not skipped.
        let created: Result<(), RedisError> = connection
            .xgroup_create_mkstream(&self.options.stream, &self.options.group, "0")
            .await;
        match created {
            Ok(()) => Ok(()),
            Err(error) if error.code() == Some("BUSYGROUP") => Ok(()),
            Err(error) => Err(redis_error(error)),
        }
    }

    fn decode(&self, entry: StreamId, delivery_count: u64) -> Result<Delivery, DispatchError> {
        let malformed = |reason: &str| DispatchError::Malformed {
            receipt: entry.id.clone(),
            reason: reason.to_owned(),
        };
        let field = |name: &str| -> Option<String> {
            match entry.map.get(name) {
                Some(Value::BulkString(bytes)) => String::from_utf8(bytes.clone()).ok(),
                Some(Value::SimpleString(text)) => Some(text.clone()),
                _ => None,
            }
        };
        let kind = field("kind").ok_or_else(|| malformed("missing kind"))?;
        let id = field("id").ok_or_else(|| malformed("missing id"))?;
        let tenant = field("tenant").filter(|t| !t.is_empty());
        Ok(Delivery {
            job: Job { kind, id, tenant },
            receipt: entry.id,
            delivery_count,
        })
    }

    async fn claim_stale(
        &self,
        state: &mut ReadState,
        connection: &mut ConnectionManager,
    ) -> Result<(), DispatchError> {
        let min_idle = u64::try_from(self.options.claim_idle.as_millis()).unwrap_or(u64::MAX);
        let reply: StreamAutoClaimReply = connection
            .xautoclaim_options(
                &self.options.stream,
                &self.options.group,
                &self.options.consumer,
                min_idle,
                "0-0",
                StreamAutoClaimOptions::default().count(100),
            )
            .await
            .map_err(redis_error)?;
        for entry in reply.claimed {
            let count = self
                .delivery_count(connection, &entry.id)
                .await
                .unwrap_or(2);
            match self.decode(entry, count) {
                Ok(delivery) => state.claimed.push_back(delivery),
                Err(error) => tracing::error!(%error, "dropping malformed queue entry"),
            }
        }
        Ok(())
    }

    async fn delivery_count(
        &self,
        connection: &mut ConnectionManager,
        id: &str,
    ) -> Result<u64, DispatchError> {
        // XPENDING key group start end count → [[id, consumer, idle-ms, deliveries]]
        let rows: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
            .arg(&self.options.stream)
            .arg(&self.options.group)
            .arg(id)
            .arg(id)
            .arg(1)
            .query_async(connection)
            .await
            .map_err(redis_error)?;
        Ok(rows.first().map(|row| row.3).unwrap_or(1))
    }
}

impl Dispatcher for RedisDispatcher {
    fn enqueue(&self, job: Job) -> BoxFuture<'_, Result<(), DispatchError>> {
        async move {
            let mut connection = self.commands().await?;
            let fields = [
                ("kind", job.kind.as_str()),
                ("id", job.id.as_str()),
                ("tenant", job.tenant.as_deref().unwrap_or("")),
            ];
            let _: String = connection
                .xadd(&self.options.stream, "*", &fields)
                .await
                .map_err(redis_error)?;
            Ok(())
        }
        .boxed()
    }

    fn receive(
        &self,
        max_wait: Duration,
    ) -> BoxFuture<'_, Result<Option<Delivery>, DispatchError>> {
        async move {
            let mut state = self.reads.lock().await;
            if let Some(delivery) = state.claimed.pop_front() {
                return Ok(Some(delivery));
            }
            let mut connection = match state.connection.clone() {
                Some(connection) => connection,
                None => {
                    // Blocking reads get their own connection so they never delay enqueues.
                    let connection = self.manager(max_wait + COMMAND_TIMEOUT).await?;
                    state.connection = Some(connection.clone());
                    connection
                }
            };
            if !state.group_ready {
                self.ensure_group(&mut connection).await?;
                state.group_ready = true;
            }
            let claim_due = state
                .last_claim
                .is_none_or(|at| at.elapsed() >= self.options.claim_idle / 2);
            if claim_due {
                state.last_claim = Some(Instant::now());
                self.claim_stale(&mut state, &mut connection).await?;
                if let Some(delivery) = state.claimed.pop_front() {
                    return Ok(Some(delivery));
                }
            }
            let block_ms = usize::try_from(max_wait.as_millis())
                .unwrap_or(usize::MAX)
                .max(1);
            let options = StreamReadOptions::default()
                .group(&self.options.group, &self.options.consumer)
                .count(1)
                .block(block_ms);
            let reply: Result<Option<StreamReadReply>, RedisError> = connection
                .xread_options(&[&self.options.stream], &[">"], &options)
                .await;
            let reply = match reply {
                Ok(reply) => reply,
                Err(error) if error.code() == Some("NOGROUP") => {
                    // The stream was deleted (purge, FLUSHALL, or a Redis restart without
                    // persistence): recreate the group on the next call.
                    state.group_ready = false;
                    self.generation
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    return Ok(None);
                }
                Err(error) => return Err(redis_error(error)),
            };
            let Some(entry) = reply
                .and_then(|r| r.keys.into_iter().next())
                .and_then(|k| k.ids.into_iter().next())
            else {
                return Ok(None);
            };
            self.decode(entry, 1).map(Some)
        }
        .boxed()
    }

    fn ack<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<(), DispatchError>> {
        async move {
            let mut connection = self.commands().await?;
            // XACK then XDEL: acknowledged entries are history nobody reads again.
            let mut pipe = redis::pipe();
            pipe.xack(
                &self.options.stream,
                &self.options.group,
                &[&delivery.receipt],
            )
            .xdel(&self.options.stream, &[&delivery.receipt]);
            let _: (u64, u64) = pipe
                .query_async(&mut connection)
                .await
                .map_err(redis_error)?;
            Ok(())
        }
        .boxed()
    }

    fn health(&self) -> BoxFuture<'_, Result<(), DispatchError>> {
        async move {
            let mut connection = self.commands().await?;
            let pong: String = redis::cmd("PING")
                .query_async(&mut connection)
                .await
                .map_err(redis_error)?;
            if pong == "PONG" {
                Ok(())
            } else {
                Err(DispatchError::Redis(format!(
                    "unexpected PING reply {pong:?}"
                )))
            }
        }
        .boxed()
    }

    fn name(&self) -> &'static str {
        "redis"
    }

    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }
}
