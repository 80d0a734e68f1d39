//! Brute-force protection for logins: counters per account and per client address, slowing
//! answers after a few failures and refusing with 429 after more. In-memory for the embedded
//! default (one process), Redis in cluster mode (shared by every web process).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::Mutex;

/// Limits of the login throttle.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures counted within this window.
    pub window: Duration,
    /// Failures per account before refusing.
    pub per_account: u64,
    /// Failures per client address before refusing.
    pub per_address: u64,
    /// Failures after which each answer is delayed.
    pub slow_after: u64,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            window: Duration::from_secs(15 * 60),
            per_account: 5,
            per_address: 30,
            slow_after: 2,
        }
    }
}

/// What the throttle says about an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead, after waiting this long (zero for the first few attempts).
    Proceed(Duration),
    /// Refuse; try again after this many seconds.
    Refuse(u64),
}

/// Counts failures per key within a window.
pub trait FailureCounter: Send + Sync + 'static {
    /// Current count and seconds until the window resets.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(u64, u64), String>>;
    /// Adds a failure.
    fn add<'a>(&'a self, key: &'a str, window: Duration) -> BoxFuture<'a, Result<(), String>>;
    /// Forgets a key (successful login).
    fn clear<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), String>>;
}

/// The throttle: a counter plus a policy.
pub struct LoginThrottle {
    counter: Box<dyn FailureCounter>,
    policy: ThrottlePolicy,
    namespace: String,
}

impl LoginThrottle {
    /// A throttle over the given counter.
    pub fn new(counter: Box<dyn FailureCounter>, policy: ThrottlePolicy) -> Self {
        LoginThrottle {
            counter,
            policy,
            namespace: "login".to_owned(),
        }
    }

    /// Keeps this throttle's counters apart from others sharing the same Redis (tests).
    pub fn namespaced(mut self, namespace: &str) -> Self {
        self.namespace = namespace.to_owned();
        self
    }

    /// An in-process throttle with the default policy.
    pub fn in_memory() -> Self {
        Self::new(
            Box::new(MemoryCounter::default()),
            ThrottlePolicy::default(),
        )
    }

    fn keys(&self, account: &str, address: &str) -> (String, String) {
        let namespace = &self.namespace;
        (
            format!("{namespace}:acct:{}", account.trim().to_lowercase()),
            format!("{namespace}:addr:{address}"),
        )
    }

    /// Decides before checking the password.
    pub async fn check(&self, account: &str, address: &str) -> Verdict {
        let (account_key, address_key) = self.keys(account, address);
        // If the counter store is down, fail open but slow: logins keep working, guesses stay
        // expensive.
        let (account_failures, account_ttl) = self
            .counter
            .get(&account_key)
            .await
            .unwrap_or((self.policy.slow_after + 1, 0));
        let (address_failures, address_ttl) =
            self.counter.get(&address_key).await.unwrap_or((0, 0));
        if account_failures >= self.policy.per_account {
            return Verdict::Refuse(account_ttl.max(1));
        }
        if address_failures >= self.policy.per_address {
            return Verdict::Refuse(address_ttl.max(1));
        }
        let over = account_failures
            .max(address_failures)
            .saturating_sub(self.policy.slow_after);
        Verdict::Proceed(Duration::from_millis((over * 400).min(2_000)))
    }

    /// Records a failed attempt.
    pub async fn failed(&self, account: &str, address: &str) {
        let (account_key, address_key) = self.keys(account, address);
        for key in [account_key, address_key] {
            if let Err(error) = self.counter.add(&key, self.policy.window).await {
                tracing::warn!(%error, "login throttle: cannot count a failure");
            }
        }
    }

    /// Records a successful login: the account's failures are forgiven.
    pub async fn succeeded(&self, account: &str, address: &str) {
        let (account_key, _) = self.keys(account, address);
        if let Err(error) = self.counter.clear(&account_key).await {
            tracing::warn!(%error, "login throttle: cannot reset a counter");
        }
    }
}

/// Counters in this process's memory.
#[derive(Default)]
pub struct MemoryCounter {
    entries: Mutex<HashMap<String, (u64, Instant, Duration)>>,
}

impl FailureCounter for MemoryCounter {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(u64, u64), String>> {
        async move {
            let entries = self.entries.lock().await;
            Ok(match entries.get(key) {
                Some((count, started, window)) if started.elapsed() < *window => {
                    (*count, (*window - started.elapsed()).as_secs() + 1)
                }
                _ => (0, 0),
            })
        }
        .boxed()
    }

    fn add<'a>(&'a self, key: &'a str, window: Duration) -> BoxFuture<'a, Result<(), String>> {
        async move {
            let mut entries = self.entries.lock().await;
            // Keep the map bounded: drop expired entries now and then.
            if entries.len() > 10_000 {
                entries.retain(|_, (_, started, window)| started.elapsed() < *window);
            }
            let entry = entries
                .entry(key.to_owned())
                .or_insert((0, Instant::now(), window));
            if entry.1.elapsed() >= entry.2 {
                *entry = (0, Instant::now(), window);
            }
            entry.0 += 1;
            Ok(())
        }
        .boxed()
    }

    fn clear<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), String>> {
        async move {
            self.entries.lock().await.remove(key);
            Ok(())
        }
        .boxed()
    }
}

/// Counters in Redis, shared by every web process.
pub struct RedisCounter {
    client: redis::Client,
    connection: Mutex<Option<redis::aio::ConnectionManager>>,
}

impl RedisCounter {
    /// Validates the URL; connects on first use.
    pub fn new(url: &str) -> Result<Self, String> {
        let client = redis::Client::open(url)
            .map_err(|_| "REDIS_URL is not a valid redis:// URL".to_owned())?;
        Ok(RedisCounter {
            client,
            connection: Mutex::new(None),
        })
    }

    async fn connection(&self) -> Result<redis::aio::ConnectionManager, String> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let connection =
            redis::aio::ConnectionManager::new_with_config(self.client.clone(), config)
                .await
                .map_err(|e| e.to_string())?;
        *slot = Some(connection.clone());
        Ok(connection)
    }
}

impl FailureCounter for RedisCounter {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(u64, u64), String>> {
        async move {
            let mut connection = self.connection().await?;
            let (count, ttl): (Option<u64>, i64) = redis::pipe()
                .get(key)
                .ttl(key)
                .query_async(&mut connection)
                .await
                .map_err(|e| e.to_string())?;
            Ok((count.unwrap_or(0), u64::try_from(ttl).unwrap_or(0)))
        }
        .boxed()
    }

    fn add<'a>(&'a self, key: &'a str, window: Duration) -> BoxFuture<'a, Result<(), String>> {
        async move {
            let mut connection = self.connection().await?;
            // INCR and start the window on the first failure, atomically.
            let script = redis::Script::new(
                "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n",
            );
            let _: u64 = script.key(key).arg(window.as_secs()).invoke_async(&mut connection).await.map_err(|e| e.to_string())?;
            Ok(())
        }
        .boxed()
    }

    fn clear<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), String>> {
        async move {
            let mut connection = self.connection().await?;
            let _: u64 = redis::cmd("DEL")
                .arg(key)
                .query_async(&mut connection)
                .await
                .map_err(|e| e.to_string())?;
            Ok(())
        }
        .boxed()
    }
}
