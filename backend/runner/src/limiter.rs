//! Per-connection rate limiting: a token bucket per key (one key per connection), in process
//! for the embedded default and in Redis for a cluster, where every worker process shares it.
//!
//! A bucket holds up to `capacity` tokens and refills at `refill_per_second`; a call costs
//! `cost` tokens (1 for a D365 request, the query cost for Shopify GraphQL). Both backends
//! *reserve*: a caller takes its tokens at once, even into debt, and then sleeps until the
//! debt would have been repaid. Reservations queue callers in arrival order without polling.
//!
//! The in-process bucket is hand-written rather than `governor`: governor's keyed limiter
//! has no notion of a penalty window, and both backends should follow the same arithmetic.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Client, Script};
use thiserror::Error;
use tokio::time::Instant;

/// Errors of a rate limiter.
#[derive(Debug, Error)]
pub enum LimiterError {
    /// One call costs more than the bucket can ever hold, so it would wait forever.
    #[error("cost {cost} exceeds the bucket capacity {capacity}")]
    CostExceedsCapacity {
        /// The requested cost.
        cost: u32,
        /// The bucket's capacity.
        capacity: u32,
    },
    /// A limit with zero capacity or a non-positive refill rate.
    #[error("invalid rate limit: {0}")]
    InvalidLimit(String),
    /// Redis could not be reached or answered an error.
    #[error("Redis: {0}")]
    Redis(String),
    /// The key is paused (a partner's `Retry-After`) for longer than the caller would wait;
    /// nothing was taken from the bucket.
    #[error("paused for {} ms more", left.as_millis())]
    Paused {
        /// How long the pause still lasts.
        left: Duration,
    },
}

/// The budget of one connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens the bucket holds when full: the largest burst.
    pub capacity: u32,
    /// Tokens added per second: the sustained rate.
    pub refill_per_second: f64,
}

impl RateLimit {
    /// A bucket of `capacity` tokens refilled at `refill_per_second`.
    pub fn new(capacity: u32, refill_per_second: f64) -> Result<Self, LimiterError> {
        let limit = RateLimit {
            capacity,
            refill_per_second,
        };
        limit.validate()?;
        Ok(limit)
    }

    fn validate(&self) -> Result<(), LimiterError> {
        if self.capacity == 0 {
            return Err(LimiterError::InvalidLimit(
                "capacity must be at least 1".into(),
            ));
        }
        if !(self.refill_per_second.is_finite() && self.refill_per_second > 0.0) {
            return Err(LimiterError::InvalidLimit(
                "refill per second must be a positive number".into(),
            ));
        }
        Ok(())
    }

    fn check_cost(&self, cost: u32) -> Result<(), LimiterError> {
        if cost > self.capacity {
            return Err(LimiterError::CostExceedsCapacity {
                cost,
                capacity: self.capacity,
            });
        }
        Ok(())
    }
}

/// A rate limiter keyed by connection.
///
/// Methods return boxed futures so the limiter can be shared as `Arc<dyn RateLimiter>`.
pub trait RateLimiter: Send + Sync + 'static {
    /// Takes `cost` tokens from `key`'s bucket, waiting as long as needed (and at least until
    /// any penalty on `key` ends); returns the time it waited.
    fn acquire<'a>(
        &'a self,
        key: &'a str,
        cost: u32,
    ) -> BoxFuture<'a, Result<Duration, LimiterError>> {
        self.acquire_unless_paused(key, cost, Duration::MAX)
    }

    /// As [`RateLimiter::acquire`], but when a penalty on `key` lasts longer than
    /// `longest_pause` it takes nothing and answers [`LimiterError::Paused`]: a caller facing
    /// a long pause gives its worker back instead of sleeping through it. One step, so the
    /// check costs no extra round trip.
    fn acquire_unless_paused<'a>(
        &'a self,
        key: &'a str,
        cost: u32,
        longest_pause: Duration,
    ) -> BoxFuture<'a, Result<Duration, LimiterError>>;

    /// After a partner answered 429 with `Retry-After`: nobody sharing `key` proceeds for at
    /// least `retry_after`. A shorter penalty never shortens a longer one already in force.
    /// Callers already sleeping on an earlier reservation are not held back further: they
    /// were admitted before the partner complained, and the caller that saw the 429 retries
    /// through the retry policy anyway.
    fn penalize<'a>(
        &'a self,
        key: &'a str,
        retry_after: Duration,
    ) -> BoxFuture<'a, Result<(), LimiterError>>;

    /// How long the penalty on `key` still lasts (zero when none): a caller facing a long
    /// penalty gives its worker back instead of sleeping through it. The Redis limiter may
    /// answer from what it learnt up to [`PENALTY_RECHECK`] ago; the acquire that follows
    /// decides with the shared state.
    fn penalty<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Duration, LimiterError>>;

    /// Gives `key` its own limit in this process (every process sharing the key must agree).
    fn set_limit(&self, key: &str, limit: RateLimit) -> Result<(), LimiterError>;
}

/// Per-key limits with a default, shared by both backends.
#[derive(Debug)]
struct Limits {
    default: RateLimit,
    overrides: Mutex<HashMap<String, RateLimit>>,
}

impl Limits {
    fn new(default: RateLimit) -> Result<Self, LimiterError> {
        default.validate()?;
        Ok(Limits {
            default,
            overrides: Mutex::new(HashMap::new()),
        })
    }

    fn set(&self, key: &str, limit: RateLimit) -> Result<(), LimiterError> {
        limit.validate()?;
        lock(&self.overrides).insert(key.to_owned(), limit);
        Ok(())
    }

    fn get(&self, key: &str) -> RateLimit {
        lock(&self.overrides)
            .get(key)
            .copied()
            .unwrap_or(self.default)
    }
}

/// A poisoned lock only means another thread panicked mid-update of plain numbers; the state
/// is still usable, and a limiter that stops working would stall every flow.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
    penalty_until: Option<Instant>,
}

/// The embedded default's limiter: token buckets in this process's memory.
///
/// Uses tokio's clock, so tests may run it under paused time.
#[derive(Debug)]
pub struct InProcessRateLimiter {
    limits: Limits,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl InProcessRateLimiter {
    /// A limiter applying `default` to every key without its own limit.
    pub fn new(default: RateLimit) -> Result<Self, LimiterError> {
        Ok(InProcessRateLimiter {
            limits: Limits::new(default)?,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Gives `key` its own limit (e.g. a D365 environment with a larger budget).
    pub fn set_limit(&self, key: &str, limit: RateLimit) -> Result<(), LimiterError> {
        self.limits.set(key, limit)
    }

    /// Reserves the tokens and returns how long the caller must wait before using them;
    /// takes nothing when the key is paused for longer than `longest_pause`.
    fn reserve(
        &self,
        key: &str,
        cost: u32,
        longest_pause: Duration,
    ) -> Result<Duration, LimiterError> {
        let limit = self.limits.get(key);
        limit.check_cost(cost)?;
        let capacity = f64::from(limit.capacity);
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: capacity,
            updated: now,
            penalty_until: None,
        });
        let penalty_wait = bucket
            .penalty_until
            .map_or(Duration::ZERO, |until| until.saturating_duration_since(now));
        if penalty_wait > longest_pause {
            return Err(LimiterError::Paused { left: penalty_wait });
        }
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limit.refill_per_second).min(capacity);
        bucket.updated = now;
        bucket.tokens -= f64::from(cost);
        let debt_wait = if bucket.tokens < 0.0 {
            Duration::from_secs_f64(-bucket.tokens / limit.refill_per_second)
        } else {
            Duration::ZERO
        };
        Ok(debt_wait.max(penalty_wait))
    }
}

impl RateLimiter for InProcessRateLimiter {
    fn acquire_unless_paused<'a>(
        &'a self,
        key: &'a str,
        cost: u32,
        longest_pause: Duration,
    ) -> BoxFuture<'a, Result<Duration, LimiterError>> {
        async move {
            let wait = self.reserve(key, cost, longest_pause)?;
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            Ok(wait)
        }
        .boxed()
    }

    fn penalize<'a>(
        &'a self,
        key: &'a str,
        retry_after: Duration,
    ) -> BoxFuture<'a, Result<(), LimiterError>> {
        async move {
            let now = Instant::now();
            let until = now + retry_after;
            let capacity = f64::from(self.limits.get(key).capacity);
            let mut buckets = lock(&self.buckets);
            let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
                tokens: capacity,
                updated: now,
                penalty_until: None,
            });
            bucket.penalty_until = Some(bucket.penalty_until.map_or(until, |old| old.max(until)));
            Ok(())
        }
        .boxed()
    }

    fn set_limit(&self, key: &str, limit: RateLimit) -> Result<(), LimiterError> {
        self.limits.set(key, limit)
    }

    fn penalty<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Duration, LimiterError>> {
        let now = Instant::now();
        let left = lock(&self.buckets)
            .get(key)
            .and_then(|bucket| bucket.penalty_until)
            .map_or(Duration::ZERO, |until| until.saturating_duration_since(now));
        async move { Ok(left) }.boxed()
    }
}

/// One atomic step of the shared token bucket. Redis's own clock (`TIME`) is the only clock,
/// so workers on machines with skewed clocks still agree. Returns the wait in milliseconds.
///
/// KEYS[1]: the bucket hash (tokens, ts in ms); KEYS[2]: the penalty marker (its PTTL is the
/// penalty left). ARGV: capacity, refill per second, cost, the longest penalty the caller
/// waits through in ms (negative: any). A longer penalty takes nothing and returns its
/// length negated (PTTL is at least 1 while the marker exists, so that is never 0).
const ACQUIRE_SCRIPT: &str = r"
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local longest = tonumber(ARGV[4])
local penalty = redis.call('PTTL', KEYS[2])
if longest >= 0 and penalty > longest then
  return -penalty
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate / 1000)
  ts = now
end
tokens = tokens - cost
local wait = 0
if tokens < 0 then
  wait = math.ceil(-tokens * 1000 / rate)
end
if penalty > wait then
  wait = penalty
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
-- Keep the bucket until it would be full again; a missing bucket reads as full.
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) * 1000 / rate) + 1000)
return wait
";

/// Sets the penalty marker unless a longer penalty is already in force. ARGV[1]: milliseconds.
const PENALIZE_SCRIPT: &str = r"
local ms = tonumber(ARGV[1])
local current = redis.call('PTTL', KEYS[1])
if current < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
end
return 0
";

/// How long the Redis limiter trusts what it last learnt of a key's penalty when asked for
/// it: workers ask before every claim, and a pause that other processes began this recently
/// is still caught by the acquire, which always reads the shared marker.
pub const PENALTY_RECHECK: Duration = Duration::from_millis(250);

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Cluster mode's limiter: token buckets in Redis, shared by every worker process that uses
/// the same URL and key prefix.
pub struct RedisRateLimiter {
    client: Client,
    prefix: String,
    limits: Limits,
    connection: tokio::sync::Mutex<Option<ConnectionManager>>,
    acquire_script: Script,
    penalize_script: Script,
    /// Per key: when the penalty was last read here, and until when it then lasted.
    known_penalties: Mutex<HashMap<String, (Instant, Instant)>>,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client holds the URL, which may hold a password.
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.prefix)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    /// Validates the URL and limit; connects on first use. Keys are
    /// `{prefix}:{<key>}:tokens` and `{prefix}:{<key>}:penalty` (the braces keep both in one
    /// Redis Cluster slot).
    pub fn new(
        url: &str,
        prefix: impl Into<String>,
        default: RateLimit,
    ) -> Result<Self, LimiterError> {
        let client = Client::open(url)
            .map_err(|_| LimiterError::Redis("REDIS_URL is not a valid redis:// URL".to_owned()))?;
        Ok(RedisRateLimiter {
            client,
            prefix: prefix.into(),
            limits: Limits::new(default)?,
            connection: tokio::sync::Mutex::new(None),
            acquire_script: Script::new(ACQUIRE_SCRIPT),
            penalize_script: Script::new(PENALIZE_SCRIPT),
            known_penalties: Mutex::default(),
        })
    }

    /// Gives `key` its own limit in this process; every process sharing the key must be
    /// configured alike, since the script takes the limit from its caller.
    pub fn set_limit(&self, key: &str, limit: RateLimit) -> Result<(), LimiterError> {
        self.limits.set(key, limit)
    }

    async fn connection(&self) -> Result<ConnectionManager, LimiterError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(2);
        let connection = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(redis_error)?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// Notes what was just learnt of `key`'s penalty (its end), for [`RateLimiter::penalty`].
    fn learn_penalty(&self, key: &str, left: Duration) {
        let now = Instant::now();
        let mut known = lock(&self.known_penalties);
        match known.get_mut(key) {
            Some(entry) => *entry = (now, now + left),
            None => {
                known.insert(key.to_owned(), (now, now + left));
            }
        }
    }

    fn keys(&self, key: &str) -> (String, String) {
        let base = format!("{}:{{{key}}}", self.prefix);
        (format!("{base}:tokens"), format!("{base}:penalty"))
    }
}

fn redis_error(error: redis::RedisError) -> LimiterError {
    // RedisError's Display never includes the URL or password.
    LimiterError::Redis(error.to_string())
}

impl RateLimiter for RedisRateLimiter {
    fn acquire_unless_paused<'a>(
        &'a self,
        key: &'a str,
        cost: u32,
        longest_pause: Duration,
    ) -> BoxFuture<'a, Result<Duration, LimiterError>> {
        async move {
            let limit = self.limits.get(key);
            limit.check_cost(cost)?;
            let (tokens_key, penalty_key) = self.keys(key);
            let mut connection = self.connection().await?;
            let wait_ms: i64 = self
                .acquire_script
                .key(tokens_key)
                .key(penalty_key)
                .arg(limit.capacity)
                .arg(limit.refill_per_second)
                .arg(cost)
                .arg(i64::try_from(longest_pause.as_millis()).unwrap_or(-1))
                .invoke_async(&mut connection)
                .await
                .map_err(redis_error)?;
            if wait_ms < 0 {
                let left = Duration::from_millis(wait_ms.unsigned_abs());
                self.learn_penalty(key, left);
                return Err(LimiterError::Paused { left });
            }
            let wait = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0));
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            Ok(wait)
        }
        .boxed()
    }

    fn penalize<'a>(
        &'a self,
        key: &'a str,
        retry_after: Duration,
    ) -> BoxFuture<'a, Result<(), LimiterError>> {
        async move {
            // Round up: waiting a millisecond too long is fine, too short is another 429.
            let ms = retry_after.as_micros().div_ceil(1000);
            let ms = u64::try_from(ms).unwrap_or(u64::MAX);
            if ms == 0 {
                return Ok(());
            }
            let (_, penalty_key) = self.keys(key);
            let mut connection = self.connection().await?;
            let _: i64 = self
                .penalize_script
                .key(penalty_key)
                .arg(ms)
                .invoke_async(&mut connection)
                .await
                .map_err(redis_error)?;
            // At least this long; a longer penalty set elsewhere is learnt on the next read.
            let known = lock(&self.known_penalties)
                .get(key)
                .map(|(_, until)| *until);
            let until = Instant::now() + retry_after;
            if known.is_none_or(|known| known < until) {
                self.learn_penalty(key, retry_after);
            }
            Ok(())
        }
        .boxed()
    }

    fn set_limit(&self, key: &str, limit: RateLimit) -> Result<(), LimiterError> {
        self.limits.set(key, limit)
    }

    fn penalty<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Duration, LimiterError>> {
        async move {
            let now = Instant::now();
            let known = lock(&self.known_penalties).get(key).copied();
            if let Some((learnt, until)) = known
                && now.saturating_duration_since(learnt) < PENALTY_RECHECK
            {
                return Ok(until.saturating_duration_since(now));
            }
            let (_, penalty_key) = self.keys(key);
            let mut connection = self.connection().await?;
            let ms: i64 = connection.pttl(penalty_key).await.map_err(redis_error)?;
            let left = Duration::from_millis(u64::try_from(ms).unwrap_or(0));
            self.learn_penalty(key, left);
            Ok(left)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn invalid_limits_are_refused() {
        assert!(RateLimit::new(0, 1.0).is_err());
        assert!(RateLimit::new(1, 0.0).is_err());
        assert!(RateLimit::new(1, f64::NAN).is_err());
        assert!(RateLimit::new(1, 0.5).is_ok());
    }

    #[tokio::test]
    async fn a_cost_above_capacity_is_an_error_not_an_endless_wait() {
        let limiter = InProcessRateLimiter::new(RateLimit::new(10, 1.0).unwrap()).unwrap();
        let error = limiter.acquire("c", 11).await.unwrap_err();
        assert!(matches!(
            error,
            LimiterError::CostExceedsCapacity {
                cost: 11,
                capacity: 10
            }
        ));
    }

    #[test]
    fn redis_keys_share_a_hash_slot() {
        let limiter =
            RedisRateLimiter::new("redis://127.0.0.1:1", "rl", RateLimit::new(1, 1.0).unwrap())
                .unwrap();
        let (tokens, penalty) = limiter.keys("shop-1");
        assert_eq!(tokens, "rl:{shop-1}:tokens");
        assert_eq!(penalty, "rl:{shop-1}:penalty");
    }
}
