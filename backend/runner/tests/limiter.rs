//! Rate limiters: the in-process token bucket, and the Redis one shared by two "processes".

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::sync::Arc;
use std::time::Duration;

use syncline_runner::{
    InProcessRateLimiter, LimiterError, PENALTY_RECHECK, RateLimit, RateLimiter, RedisRateLimiter,
};
use tokio::time::Instant;

fn redis_url() -> String {
    match std::env::var("SYNCLINE_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "SYNCLINE_TEST_REDIS_URL is not set: Redis tests need a server (locally: redis://127.0.0.1:6379). Run tests/run.sh, which starts one."
        ),
    }
}

/// A fresh prefix per test, so runs and tests never share a bucket.
fn prefix(test: &str) -> String {
    format!("test:limiter:{test}:{}", uuid::Uuid::new_v4().simple())
}

/// Runs `total` acquires of cost 1 concurrently, spread over `limiters`; returns each
/// completion time relative to the start (sorted) and how many callers did not wait at all.
async fn completions(
    limiters: &[Arc<dyn RateLimiter>],
    key: &str,
    total: usize,
) -> (Vec<Duration>, usize) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..total {
        let limiter = Arc::clone(&limiters[i % limiters.len()]);
        let key = key.to_owned();
        tasks.push(tokio::spawn(async move {
            let waited = limiter.acquire(&key, 1).await.unwrap();
            (start.elapsed(), waited.is_zero())
        }));
    }
    let mut times = Vec::new();
    let mut unwaited = 0;
    for task in tasks {
        let (at, no_wait) = task.await.unwrap();
        times.push(at);
        unwaited += usize::from(no_wait);
    }
    times.sort();
    (times, unwaited)
}

/// No prefix of the completions exceeds the budget: by time t at most capacity + rate * t.
fn assert_within_budget(times: &[Duration], limit: RateLimit) {
    for (i, at) in times.iter().enumerate() {
        let allowed = f64::from(limit.capacity) + limit.refill_per_second * at.as_secs_f64();
        // +1 absorbs millisecond rounding of the Redis clock.
        assert!(
            (i + 1) as f64 <= allowed + 1.0,
            "{} acquires done by {at:?}, budget allows {allowed:.1}",
            i + 1
        );
    }
}

#[tokio::test]
async fn in_process_burst_then_sustained_rate() {
    let limit = RateLimit::new(5, 50.0).unwrap();
    let limiter: Arc<dyn RateLimiter> = Arc::new(InProcessRateLimiter::new(limit).unwrap());
    let (times, unwaited) = completions(&[limiter], "conn-1", 30).await;
    // 5 from the burst, the other 25 at 50/s: at least 0.5 s, and not much more.
    let last = *times.last().unwrap();
    assert!(
        last >= Duration::from_millis(490),
        "finished too soon: {last:?}"
    );
    assert!(last < Duration::from_secs(3), "finished too late: {last:?}");
    // The burst passes at once; a slow machine may have refilled a token or two meanwhile.
    assert!(
        (5..=8).contains(&unwaited),
        "{unwaited} callers did not wait"
    );
    assert_within_budget(&times, limit);
}

#[tokio::test]
async fn in_process_keys_are_independent_and_limits_can_differ() {
    let limiter = InProcessRateLimiter::new(RateLimit::new(1, 1.0).unwrap()).unwrap();
    limiter
        .set_limit("big", RateLimit::new(100, 100.0).unwrap())
        .unwrap();
    let start = Instant::now();
    assert_eq!(limiter.acquire("a", 1).await.unwrap(), Duration::ZERO);
    assert_eq!(limiter.acquire("b", 1).await.unwrap(), Duration::ZERO);
    for _ in 0..100 {
        limiter.acquire("big", 1).await.unwrap();
    }
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn in_process_variable_cost_and_penalty() {
    let limit = RateLimit::new(100, 200.0).unwrap();
    let limiter = InProcessRateLimiter::new(limit).unwrap();
    let start = Instant::now();
    limiter.acquire("shop", 100).await.unwrap();
    // The bucket is empty: 50 more tokens take 0.25 s at 200/s.
    assert!(!limiter.acquire("shop", 50).await.unwrap().is_zero());
    assert!(
        start.elapsed() >= Duration::from_millis(245),
        "{:?}",
        start.elapsed()
    );

    let start = Instant::now();
    limiter
        .penalize("shop", Duration::from_millis(300))
        .await
        .unwrap();
    // A shorter penalty does not shorten the longer one.
    limiter
        .penalize("shop", Duration::from_millis(10))
        .await
        .unwrap();
    limiter.acquire("shop", 1).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(295),
        "{:?}",
        start.elapsed()
    );
    // Other connections are not penalised.
    assert_eq!(limiter.acquire("other", 1).await.unwrap(), Duration::ZERO);
}

#[tokio::test]
async fn redis_bucket_is_shared_by_two_processes() {
    let url = redis_url();
    let limit = RateLimit::new(5, 20.0).unwrap();
    let prefix = prefix("shared");
    // Two limiters with their own clients stand for two worker processes.
    let one: Arc<dyn RateLimiter> = Arc::new(RedisRateLimiter::new(&url, &prefix, limit).unwrap());
    let two: Arc<dyn RateLimiter> = Arc::new(RedisRateLimiter::new(&url, &prefix, limit).unwrap());
    let (times, unwaited) = completions(&[one, two], "d365-env", 30).await;
    assert!(
        (5..=8).contains(&unwaited),
        "{unwaited} callers did not wait"
    );
    // Together: 5 from the burst, 25 at 20/s = 1.25 s at least.
    let last = *times.last().unwrap();
    assert!(
        last >= Duration::from_millis(1_200),
        "budget exceeded: {last:?}"
    );
    assert!(last < Duration::from_secs(5), "finished too late: {last:?}");
    assert_within_budget(&times, limit);
}

#[tokio::test]
async fn redis_penalty_blocks_the_other_process() {
    let url = redis_url();
    let limit = RateLimit::new(10, 100.0).unwrap();
    let prefix = prefix("penalty");
    let one = RedisRateLimiter::new(&url, &prefix, limit).unwrap();
    let two = RedisRateLimiter::new(&url, &prefix, limit).unwrap();
    assert_eq!(two.acquire("shop", 1).await.unwrap(), Duration::ZERO);

    let start = Instant::now();
    one.penalize("shop", Duration::from_millis(500))
        .await
        .unwrap();
    // A shorter penalty does not shorten the longer one.
    one.penalize("shop", Duration::from_millis(20))
        .await
        .unwrap();
    assert!(!two.acquire("shop", 1).await.unwrap().is_zero());
    // 5 ms of slack for Redis's millisecond rounding of the remaining TTL.
    assert!(
        start.elapsed() >= Duration::from_millis(495),
        "{:?}",
        start.elapsed()
    );
    // Another connection under the same prefix is not penalised.
    assert_eq!(two.acquire("other", 1).await.unwrap(), Duration::ZERO);
}

/// Under a penalty longer than the caller waits through, `acquire_unless_paused` answers at
/// once with the pause left and takes no tokens; under a shorter one it waits it out.
async fn assert_long_pauses_are_refused_without_taking_tokens(
    one: &dyn RateLimiter,
    two: &dyn RateLimiter,
) {
    // A bucket of 2: were the refused calls to take tokens, the last acquire would wait.
    one.penalize("env", Duration::from_secs(30)).await.unwrap();
    for _ in 0..3 {
        let start = Instant::now();
        let refused = two
            .acquire_unless_paused("env", 1, Duration::from_secs(5))
            .await
            .unwrap_err();
        let LimiterError::Paused { left } = refused else {
            panic!("expected a pause, got {refused:?}");
        };
        assert!(
            left > Duration::from_secs(25) && left <= Duration::from_secs(30),
            "{left:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(1));
    }
    // The other process learns of the pause from its refusals.
    assert!(two.penalty("env").await.unwrap() > Duration::from_secs(25));

    one.penalize("short", Duration::from_millis(300))
        .await
        .unwrap();
    let start = Instant::now();
    two.acquire_unless_paused("short", 1, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(295),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        two.acquire_unless_paused("short", 1, Duration::from_secs(5))
            .await
            .unwrap(),
        Duration::ZERO,
        "both tokens were still there"
    );
}

#[tokio::test]
async fn in_process_long_pauses_are_refused_without_taking_tokens() {
    let limiter = InProcessRateLimiter::new(RateLimit::new(2, 0.01).unwrap()).unwrap();
    assert_long_pauses_are_refused_without_taking_tokens(&limiter, &limiter).await;
}

#[tokio::test]
async fn redis_long_pauses_are_refused_without_taking_tokens() {
    let url = redis_url();
    let limit = RateLimit::new(2, 0.01).unwrap();
    let prefix = prefix("paused");
    let one = RedisRateLimiter::new(&url, &prefix, limit).unwrap();
    let two = RedisRateLimiter::new(&url, &prefix, limit).unwrap();
    assert_long_pauses_are_refused_without_taking_tokens(&one, &two).await;
}

#[tokio::test]
async fn redis_penalty_set_elsewhere_is_seen_within_the_recheck_interval() {
    let url = redis_url();
    let limit = RateLimit::new(10, 100.0).unwrap();
    let prefix = prefix("recheck");
    let one = RedisRateLimiter::new(&url, &prefix, limit).unwrap();
    let two = RedisRateLimiter::new(&url, &prefix, limit).unwrap();
    assert_eq!(two.penalty("env").await.unwrap(), Duration::ZERO);
    one.penalize("env", Duration::from_secs(30)).await.unwrap();
    tokio::time::sleep(PENALTY_RECHECK + Duration::from_millis(50)).await;
    assert!(two.penalty("env").await.unwrap() > Duration::from_secs(25));
}

#[tokio::test]
async fn redis_refuses_a_cost_above_capacity() {
    let limiter = RedisRateLimiter::new(
        &redis_url(),
        prefix("cost"),
        RateLimit::new(3, 1.0).unwrap(),
    )
    .unwrap();
    assert!(limiter.acquire("k", 4).await.is_err());
}
