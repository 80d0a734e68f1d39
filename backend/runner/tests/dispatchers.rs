//! Both dispatchers against their real backends: in-process and a real Redis server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use syncline_runner::{
    Dispatcher, HandlerError, InProcessDispatcher, Job, JobHandler, RedisDispatcher,
    RedisDispatcherOptions, WorkerPool, WorkerPoolOptions,
};
use tokio_util::sync::CancellationToken;

fn redis_url() -> String {
    match std::env::var("SYNCLINE_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "SYNCLINE_TEST_REDIS_URL is not set: Redis tests need a server. Run tests/run.sh, which starts one."
        ),
    }
}

fn redis_options(stream: &str) -> RedisDispatcherOptions {
    let mut options = RedisDispatcherOptions::new(redis_url());
    options.stream = format!("test:{stream}:{}", uuid::Uuid::new_v4());
    options
}

fn job(id: u32) -> Job {
    Job {
        kind: "test".into(),
        id: id.to_string(),
        tenant: Some("t1".into()),
    }
}

async fn round_trip(dispatcher: &dyn Dispatcher) {
    dispatcher.health().await.unwrap();
    assert!(
        dispatcher
            .receive(Duration::from_millis(50))
            .await
            .unwrap()
            .is_none(),
        "{}: empty at first",
        dispatcher.name()
    );
    for id in 0..3 {
        dispatcher.enqueue(job(id)).await.unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        let delivery = dispatcher
            .receive(Duration::from_secs(2))
            .await
            .unwrap()
            .expect("a job");
        assert_eq!(delivery.delivery_count, 1);
        dispatcher.ack(&delivery).await.unwrap();
        seen.push(delivery.job);
    }
    assert_eq!(
        seen,
        vec![job(0), job(1), job(2)],
        "{}: FIFO and intact",
        dispatcher.name()
    );
    assert!(
        dispatcher
            .receive(Duration::from_millis(50))
            .await
            .unwrap()
            .is_none(),
        "{}: nothing left",
        dispatcher.name()
    );
}

#[tokio::test]
async fn in_process_round_trip() {
    round_trip(&InProcessDispatcher::new()).await;
}

#[tokio::test]
async fn redis_round_trip() {
    round_trip(&RedisDispatcher::new(redis_options("round-trip")).unwrap()).await;
}

#[tokio::test]
async fn redis_redelivers_what_a_dead_consumer_left_unacknowledged() {
    let mut options = redis_options("claim");
    options.claim_idle = Duration::from_millis(200);
    let dead = RedisDispatcher::new(RedisDispatcherOptions {
        consumer: "dead-worker".into(),
        ..options.clone()
    })
    .unwrap();
    dead.enqueue(job(7)).await.unwrap();
    let taken = dead
        .receive(Duration::from_secs(2))
        .await
        .unwrap()
        .expect("delivered to the first consumer");
    assert_eq!(taken.job, job(7));
    drop(dead); // dies without acknowledging

    let survivor = RedisDispatcher::new(RedisDispatcherOptions {
        consumer: "survivor".into(),
        ..options
    })
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let again = loop {
        if let Some(delivery) = survivor.receive(Duration::from_millis(100)).await.unwrap() {
            break delivery;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the orphaned job was never reclaimed"
        );
    };
    assert_eq!(again.job, job(7));
    assert_eq!(again.delivery_count, 2, "the second delivery is counted");
    survivor.ack(&again).await.unwrap();
    survivor.purge().await.unwrap();
}

#[tokio::test]
async fn redis_health_names_the_failure_when_the_server_is_down() {
    // A port nothing listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dispatcher = RedisDispatcher::new(RedisDispatcherOptions::new(format!(
        "redis://127.0.0.1:{port}"
    )))
    .unwrap();
    let error = dispatcher.health().await.expect_err("no server");
    assert!(error.to_string().starts_with("Redis:"), "{error}");
    assert!(dispatcher.enqueue(job(1)).await.is_err());
}

struct Recorder {
    done: Mutex<BTreeSet<String>>,
    fail_first: Mutex<BTreeSet<String>>,
}

impl JobHandler for Recorder {
    fn handle<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), HandlerError>> {
        async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if self.fail_first.lock().unwrap().remove(&job.id) {
                return Err(HandlerError::Transient("first try fails".into()));
            }
            self.done.lock().unwrap().insert(job.id.clone());
            Ok(())
        }
        .boxed()
    }
}

#[tokio::test]
async fn worker_pool_processes_everything_retries_transient_failures_and_stops_cleanly() {
    let mut options = redis_options("pool");
    options.claim_idle = Duration::from_millis(300);
    let dispatcher: Arc<dyn Dispatcher> = Arc::new(RedisDispatcher::new(options).unwrap());
    let handler = Arc::new(Recorder {
        done: Mutex::new(BTreeSet::new()),
        fail_first: Mutex::new(["3".to_owned()].into()),
    });
    for id in 0..50 {
        dispatcher.enqueue(job(id)).await.unwrap();
    }
    let shutdown = CancellationToken::new();
    let pool = tokio::spawn(WorkerPool::run(
        Arc::clone(&dispatcher),
        handler.clone(),
        WorkerPoolOptions {
            concurrency: 4,
            poll: Duration::from_millis(100),
        },
        shutdown.clone(),
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while handler.done.lock().unwrap().len() < 50 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of 50 done",
            handler.done.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), pool)
        .await
        .expect("pool stops")
        .unwrap();
}

/// Handles every job in `work`, noting when tenant B's job is done.
struct Timed {
    work: Duration,
    b_done: Arc<tokio::sync::Notify>,
    handled_a: Arc<std::sync::atomic::AtomicUsize>,
}

impl JobHandler for Timed {
    fn handle<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), HandlerError>> {
        async move {
            // Stands for the partner's answer time of a real run.
            tokio::time::sleep(self.work).await;
            if job.tenant.as_deref() == Some("tenant-b") {
                self.b_done.notify_one();
            } else {
                self.handled_a
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            Ok(())
        }
        .boxed()
    }
}

/// Tenant A has 20,000 queued jobs that take 5 ms each (over 12 s of work for 8 workers);
/// tenant B's single job, queued last, must be done within 5 s.
async fn fairness(dispatcher: Arc<dyn Dispatcher>) {
    for id in 0..20_000u32 {
        dispatcher
            .enqueue(Job {
                kind: "test".into(),
                id: id.to_string(),
                tenant: Some("tenant-a".into()),
            })
            .await
            .unwrap();
    }
    let b_done = Arc::new(tokio::sync::Notify::new());
    let handled_a = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handler = Arc::new(Timed {
        work: Duration::from_millis(5),
        b_done: Arc::clone(&b_done),
        handled_a: Arc::clone(&handled_a),
    });
    let shutdown = CancellationToken::new();
    let pool = tokio::spawn(WorkerPool::run(
        Arc::clone(&dispatcher),
        handler,
        WorkerPoolOptions {
            concurrency: 8,
            poll: Duration::from_millis(200),
        },
        shutdown.clone(),
    ));
    // Let A's backlog start draining first, as in production.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let queued_at = std::time::Instant::now();
    dispatcher
        .enqueue(Job {
            kind: "test".into(),
            id: "b".into(),
            tenant: Some("tenant-b".into()),
        })
        .await
        .unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(5), b_done.notified()).await;
    let elapsed = queued_at.elapsed();
    shutdown.cancel();
    pool.await.unwrap();
    assert!(
        waited.is_ok(),
        "{}: tenant B waited more than 5 s behind tenant A's backlog",
        dispatcher.name()
    );
    let a = handled_a.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        a < 20_000,
        "{}: A's backlog must still be there when B is served ({a} done)",
        dispatcher.name()
    );
    eprintln!(
        "{}: B served {elapsed:?} after queueing, with {} of A's 20,000 jobs done",
        dispatcher.name(),
        a
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_one_tenant_backlog_does_not_delay_another_tenant() {
    fairness(Arc::new(InProcessDispatcher::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_one_tenant_backlog_does_not_delay_another_tenant() {
    let dispatcher = Arc::new(RedisDispatcher::new(redis_options("fair")).unwrap());
    fairness(dispatcher.clone()).await;
    dispatcher.purge().await.unwrap();
}
