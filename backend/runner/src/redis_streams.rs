use std::collections::{HashSet, VecDeque};
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
    /// Prefix of the stream keys (one stream per tenant: `{stream}:{tenant}`); every process
    /// of one installation must use the same.
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

/// Cluster mode's dispatcher: one Redis stream per tenant, read by a consumer group
/// (`XREADGROUP`), with entries of dead consumers taken over by `XAUTOCLAIM` once idle for
/// `claim_idle`.
///
/// Fairness: one `XREADGROUP … COUNT 1 STREAMS s1 … sN` takes at most one entry from each
/// tenant's stream, so a tenant with a backlog of 100,000 entries gets one turn like every
/// other tenant, and another tenant's single event waits for one round, not for the backlog.
///
/// Connections are opened lazily and re-opened after failures, so a process starts (and
/// reports "not ready") while Redis is down, and recovers when it comes back. A Redis that
/// lost its data (restart without persistence) is noticed through a marker key, and
/// [`Dispatcher::generation`] changes so the sweeper hands out every due run again.
pub struct RedisDispatcher {
    client: Client,
    options: RedisDispatcherOptions,
    commands: Mutex<Option<ConnectionManager>>,
    reads: Mutex<ReadState>,
    generation: std::sync::atomic::AtomicU64,
}

struct ReadState {
    connection: Option<ConnectionManager>,
    /// Tenant streams known to exist with the group created.
    streams: Vec<String>,
    ready: HashSet<String>,
    refreshed: Option<Instant>,
    /// Where the next read starts in `streams`, so no tenant is always first.
    rotation: usize,
    buffered: VecDeque<Delivery>,
    last_claim: Option<Instant>,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the list of tenant streams is re-read.
const REFRESH_EVERY: Duration = Duration::from_millis(500);
/// Streams read per call; with more tenants, reads rotate through them.
const STREAMS_PER_READ: usize = 64;
/// Separates the stream key from the entry id in a receipt.
const RECEIPT_SEPARATOR: char = '|';

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
                streams: Vec::new(),
                ready: HashSet::new(),
                refreshed: None,
                rotation: 0,
                buffered: VecDeque::new(),
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

    fn registry(&self) -> String {
        format!("{}:tenants", self.options.stream)
    }

    fn marker(&self) -> String {
        format!("{}:alive", self.options.stream)
    }

    fn stream_of(&self, tenant: Option<&str>) -> String {
        format!(
            "{}:t:{}",
            self.options.stream,
            tenant.filter(|t| !t.is_empty()).unwrap_or("_platform")
        )
    }

    /// Removes every entry, stream and group; for tests and `admin` tooling.
    pub async fn purge(&self) -> Result<(), DispatchError> {
        let mut connection = self.commands().await?;
        let streams: Vec<String> = connection
            .smembers(self.registry())
            .await
            .map_err(redis_error)?;
        let mut pipe = redis::pipe();
        for stream in &streams {
            pipe.del(stream).ignore();
        }
        pipe.del(self.registry()).ignore();
        let _: () = pipe
            .query_async(&mut connection)
            .await
            .map_err(redis_error)?;
        let mut state = self.reads.lock().await;
        state.ready.clear();
        state.streams.clear();
        state.refreshed = None;
        Ok(())
    }

    async fn ensure_group(
        &self,
        connection: &mut ConnectionManager,
        stream: &str,
    ) -> Result<(), DispatchError> {
        // "0" rather than "$": entries queued before the first worker started are not skipped.
        let created: Result<(), RedisError> = connection
            .xgroup_create_mkstream(stream, &self.options.group, "0")
            .await;
        match created {
            Ok(()) => Ok(()),
            Err(error) if error.code() == Some("BUSYGROUP") => Ok(()),
            Err(error) => Err(redis_error(error)),
        }
    }

    /// Re-reads the tenant streams; notices a Redis that lost its data.
    async fn refresh(
        &self,
        state: &mut ReadState,
        connection: &mut ConnectionManager,
    ) -> Result<(), DispatchError> {
        let fresh: bool = redis::cmd("SET")
            .arg(self.marker())
            .arg("1")
            .arg("NX")
            .query_async::<Option<String>>(connection)
            .await
            .map_err(redis_error)?
            .is_some();
        if fresh {
            // First start, or Redis forgot everything: nothing queued can be trusted.
            self.lost(state);
        }
        let mut streams: Vec<String> = connection
            .smembers(self.registry())
            .await
            .map_err(redis_error)?;
        streams.sort();
        for stream in &streams {
            if !state.ready.contains(stream) {
                self.ensure_group(connection, stream).await?;
                state.ready.insert(stream.clone());
            }
        }
        state.streams = streams;
        state.refreshed = Some(Instant::now());
        Ok(())
    }

    fn lost(&self, state: &mut ReadState) {
        state.ready.clear();
        state.streams.clear();
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn decode(
        &self,
        stream: &str,
        entry: StreamId,
        delivery_count: u64,
    ) -> Result<Delivery, DispatchError> {
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
            receipt: format!("{stream}{RECEIPT_SEPARATOR}{}", entry.id),
            delivery_count,
        })
    }

    async fn claim_stale(
        &self,
        state: &mut ReadState,
        connection: &mut ConnectionManager,
    ) -> Result<(), DispatchError> {
        let min_idle = u64::try_from(self.options.claim_idle.as_millis()).unwrap_or(u64::MAX);
        for stream in state.streams.clone() {
            let reply: Result<StreamAutoClaimReply, RedisError> = connection
                .xautoclaim_options(
                    &stream,
                    &self.options.group,
                    &self.options.consumer,
                    min_idle,
                    "0-0",
                    StreamAutoClaimOptions::default().count(100),
                )
                .await;
            let reply = match reply {
                Ok(reply) => reply,
                Err(error) if error.code() == Some("NOGROUP") => {
                    state.ready.remove(&stream);
                    continue;
                }
                Err(error) => return Err(redis_error(error)),
            };
            for entry in reply.claimed {
                let count = self
                    .delivery_count(connection, &stream, &entry.id)
                    .await
                    .unwrap_or(2);
                match self.decode(&stream, entry, count) {
                    Ok(delivery) => state.buffered.push_back(delivery),
                    Err(error) => tracing::error!(%error, "dropping malformed queue entry"),
                }
            }
        }
        Ok(())
    }

    async fn delivery_count(
        &self,
        connection: &mut ConnectionManager,
        stream: &str,
        id: &str,
    ) -> Result<u64, DispatchError> {
        // XPENDING key group start end count → [[id, consumer, idle-ms, deliveries]]
        let rows: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
            .arg(stream)
            .arg(&self.options.group)
            .arg(id)
            .arg(id)
            .arg(1)
            .query_async(connection)
            .await
            .map_err(redis_error)?;
        Ok(rows.first().map(|row| row.3).unwrap_or(1))
    }

    /// One blocking read of at most one entry per tenant stream, into the buffer.
    async fn read_round(
        &self,
        state: &mut ReadState,
        connection: &mut ConnectionManager,
        max_wait: Duration,
    ) -> Result<(), DispatchError> {
        if state.streams.is_empty() {
            // Nothing queued anywhere yet: wait a little for producers, without a busy loop.
            tokio::time::sleep(max_wait.min(REFRESH_EVERY)).await;
            return Ok(());
        }
        let count = state.streams.len();
        let take = count.min(STREAMS_PER_READ);
        let start = state.rotation % count;
        state.rotation = state.rotation.wrapping_add(take);
        let keys: Vec<&String> = (0..take)
            .map(|i| &state.streams[(start + i) % count])
            .collect();
        let ids: Vec<&str> = keys.iter().map(|_| ">").collect();
        let block_ms = usize::try_from(max_wait.min(REFRESH_EVERY).as_millis())
            .unwrap_or(usize::MAX)
            .max(1);
        let options = StreamReadOptions::default()
            .group(&self.options.group, &self.options.consumer)
            .count(1)
            .block(block_ms);
        let reply: Result<Option<StreamReadReply>, RedisError> =
            connection.xread_options(&keys, &ids, &options).await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) if error.code() == Some("NOGROUP") => {
                // A stream vanished (purge, FLUSHALL, a Redis restart without persistence).
                self.lost(state);
                return Ok(());
            }
            Err(error) => return Err(redis_error(error)),
        };
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in key.ids {
                match self.decode(&key.key, entry, 1) {
                    Ok(delivery) => state.buffered.push_back(delivery),
                    Err(error) => tracing::error!(%error, "dropping malformed queue entry"),
                }
            }
        }
        Ok(())
    }
}

impl Dispatcher for RedisDispatcher {
    fn enqueue(&self, job: Job) -> BoxFuture<'_, Result<(), DispatchError>> {
        async move {
            let mut connection = self.commands().await?;
            let stream = self.stream_of(job.tenant.as_deref());
            let fields = [
                ("kind", job.kind.as_str()),
                ("id", job.id.as_str()),
                ("tenant", job.tenant.as_deref().unwrap_or("")),
            ];
            let mut pipe = redis::pipe();
            pipe.xadd(&stream, "*", &fields)
                .ignore()
                .sadd(self.registry(), &stream)
                .ignore();
            let _: () = pipe
                .query_async(&mut connection)
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
            if let Some(delivery) = state.buffered.pop_front() {
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
            let deadline = Instant::now() + max_wait;
            loop {
                if state
                    .refreshed
                    .is_none_or(|at| at.elapsed() >= REFRESH_EVERY)
                {
                    self.refresh(&mut state, &mut connection).await?;
                }
                let claim_due = state
                    .last_claim
                    .is_none_or(|at| at.elapsed() >= self.options.claim_idle / 2);
                if claim_due {
                    state.last_claim = Some(Instant::now());
                    self.claim_stale(&mut state, &mut connection).await?;
                }
                if state.buffered.is_empty() {
                    let left = deadline.saturating_duration_since(Instant::now());
                    self.read_round(
                        &mut state,
                        &mut connection,
                        left.max(Duration::from_millis(1)),
                    )
                    .await?;
                }
                if let Some(delivery) = state.buffered.pop_front() {
                    return Ok(Some(delivery));
                }
                if Instant::now() >= deadline {
                    return Ok(None);
                }
            }
        }
        .boxed()
    }

    fn ack<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<(), DispatchError>> {
        async move {
            let Some((stream, id)) = delivery.receipt.split_once(RECEIPT_SEPARATOR) else {
                return Err(DispatchError::Malformed {
                    receipt: delivery.receipt.clone(),
                    reason: "not a receipt of this dispatcher".into(),
                });
            };
            let mut connection = self.commands().await?;
            // XACK then XDEL: acknowledged entries are history nobody reads again.
            let mut pipe = redis::pipe();
            pipe.xack(stream, &self.options.group, &[id])
                .xdel(stream, &[id]);
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
