//! The order pipeline under load, printed as figures (not a timed test):
//!
//! - intake: N signed `orders/create` webhooks sent with 64 in flight; acknowledgements per
//!   second and p50 / p99 latency;
//! - end to end: from the first send until every order is a sales order in the D365
//!   emulator (its throttling off);
//! - budget: the D365 emulator throttled to a fixed request budget; the share of the budget
//!   the pipeline achieves, and that nothing is lost.
//!
//! Each in the embedded default and, when `SYNCLINE_BENCH_DATABASE_URL` and
//! `SYNCLINE_BENCH_REDIS_URL` name an empty PostgreSQL database and a Redis, in cluster mode with two
//! worker processes. Run: `cargo bench -p syncline --bench pipeline` (`BENCH_ORDERS=n`,
//! `BENCH_MODES=embedded` or `cluster` for one mode, `BENCH_WORKERS=n` jobs at once per process,
//! 32 by default).

#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails loudly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

#[path = "../tests/support/mod.rs"]
mod support;
use support::{Process, embedded_env, free_port, start_demo, syncline};

const IN_FLIGHT: usize = 64;

struct Setup {
    _processes: Vec<Process>,
    shop_control: String,
    d365: String,
    http: reqwest::Client,
    store: syncline_store::Store,
}

async fn start(database: Option<&str>, redis: Option<&str>) -> Setup {
    // Kept after the run: the processes' logs are the first place to look at odd figures.
    let dir = tempfile::tempdir().unwrap().keep();
    eprintln!("logs in {}", dir.display());
    let mut env = embedded_env(&dir, free_port());
    env.push(("SYNCLINE_LOG".into(), "warn".into()));
    let workers = std::env::var("BENCH_WORKERS").unwrap_or_else(|_| "32".into());
    env.push(("SYNCLINE_WORKERS".into(), workers));
    if let (Some(database), Some(redis)) = (database, redis) {
        env.push(("DATABASE_URL".into(), database.into()));
        env.push(("REDIS_URL".into(), redis.into()));
    }
    let support::Demo {
        process: demo,
        shopify: base,
        shop,
        d365,
        ..
    } = start_demo(&dir, &env);
    let mut processes = vec![demo];
    if database.is_some() {
        for n in 0..2 {
            processes.push(syncline(
                &dir,
                &env,
                &["serve", "--role", "worker"],
                &format!("worker-{n}.log"),
            ));
        }
    }
    let store = match database {
        Some(url) => syncline_store::Store::connect(&syncline_store::StoreOptions::Postgres {
            url: url.into(),
            max_connections: 2,
        })
        .await
        .unwrap(),
        None => syncline_store::Store::connect(&syncline_store::StoreOptions::Sqlite(
            syncline_store::SqliteSettings {
                path: dir.join("data/syncline.db"),
            },
        ))
        .await
        .unwrap(),
    };
    Setup {
        _processes: processes,
        shop_control: format!("{base}/_sim/shops/{shop}"),
        d365,
        http: reqwest::Client::new(),
        store,
    }
}

impl Setup {
    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: impl reqwest::IntoUrl) -> T {
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A real order from the emulated shop (catalogue SKUs only) as the template, the
    /// intake URL and the signing secret.
    async fn template(&self) -> (Value, String, String) {
        let ids: Value = self
            .http
            .post(format!("{}/orders/generate", self.shop_control))
            .json(&json!({ "count": 1, "custom_line_probability": 0.0, "guest_probability": 0.0 }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = ids["order_ids"][0].as_str().unwrap().to_owned();
        let orders: Vec<Value> = self.get_json(format!("{}/orders", self.shop_control)).await;
        let order = orders
            .into_iter()
            .find(|o| o["id"].as_u64() == id.parse::<u64>().ok())
            .unwrap();
        let shop: Value = self.get_json(&self.shop_control).await;
        let subscriptions: Vec<Value> = self
            .get_json(format!("{}/subscriptions", self.shop_control))
            .await;
        let callback = subscriptions[0]["callback_url"]
            .as_str()
            .unwrap()
            .to_owned();
        let secret = shop["info"]["api_secret"].as_str().unwrap().to_owned();
        (order, callback, secret)
    }

    async fn d365_throttle(&self, requests: u32, window_secs: u64) {
        let response = self
            .http
            .put(format!("{}/_sim/throttle", self.d365))
            .json(&json!({ "requests_per_window": requests, "window_secs": window_secs, "max_concurrent": 1000 }))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// Operations the D365 emulator's budget admitted since it was set.
    async fn d365_served(&self) -> u64 {
        let answer: Value = self.get_json(format!("{}/_sim/throttle", self.d365)).await;
        answer["served"].as_u64().unwrap()
    }

    /// Sets the D365 connection's `requests_per_5_minutes`.
    async fn set_d365_budget(&self, per_5_minutes: u64) {
        for tenant in self.store.list_tenants().await.unwrap() {
            for connection in self.store.list_connections(tenant.id).await.unwrap() {
                if connection.kind == syncline_store::ConnectionKind::D365 {
                    let mut settings = connection.settings.clone();
                    settings["requests_per_5_minutes"] = json!(per_5_minutes);
                    self.store
                        .update_connection(tenant.id, connection.id, &connection.name, &settings)
                        .await
                        .unwrap();
                }
            }
        }
    }

    async fn succeeded(&self) -> (i64, i64) {
        let mut done = 0;
        let mut other = 0;
        for tenant in self.store.list_tenants().await.unwrap() {
            for (status, count) in self.store.run_counts(tenant.id, None).await.unwrap() {
                if status == syncline_store::RunStatus::Succeeded {
                    done += count;
                } else {
                    other += count;
                }
            }
        }
        (done, other)
    }

    async fn wait_until(&self, total: i64) -> Duration {
        let started = Instant::now();
        loop {
            let (done, _) = self.succeeded().await;
            if done >= total {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "only {done} of {total} orders done after 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `n` signed webhooks of distinct orders, made from the template.
fn deliveries(template: &Value, secret: &str, n: usize, offset: u64) -> Vec<(String, Vec<u8>)> {
    (0..n as u64)
        .map(|i| {
            let mut order = template.clone();
            let id = 9_000_000_000_000 + offset + i;
            order["id"] = json!(id);
            order["name"] = json!(format!("#B{}", offset + i));
            let body = serde_json::to_vec(&order).unwrap();
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(&body);
            let signature =
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
            (signature, body)
        })
        .collect()
}

/// Sends every delivery with `IN_FLIGHT` at once; returns each acknowledgement's latency.
async fn send_all(
    http: &reqwest::Client,
    url: &str,
    deliveries: Vec<(String, Vec<u8>)>,
) -> (Duration, Vec<Duration>) {
    let url: Arc<str> = url.into();
    let queue = Arc::new(tokio::sync::Mutex::new(deliveries));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let queue = Arc::clone(&queue);
        let http = http.clone();
        let url = Arc::clone(&url);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let next = queue.lock().await.pop();
                let Some((signature, body)) = next else { break };
                let sent = Instant::now();
                let response = http
                    .post(&*url)
                    .header("Content-Type", "application/json")
                    .header("X-Shopify-Topic", "orders/create")
                    .header("X-Shopify-Hmac-Sha256", signature)
                    .header("X-Shopify-Shop-Domain", "bench.myshopify.com")
                    .header("X-Shopify-API-Version", "2025-07")
                    .header("X-Shopify-Webhook-Id", uuid_like())
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    (started.elapsed(), latencies)
}

fn uuid_like() -> String {
    use rand::Rng;
    format!("{:032x}", rand::rng().random::<u128>())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn run(mode: &str, database: Option<&str>, redis: Option<&str>, n: usize) {
    let setup = start(database, redis).await;
    setup.d365_throttle(100_000_000, 300).await;
    let (template, url, secret) = setup.template().await;
    // The template order itself and the demo shop's seed make the baseline.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (baseline, _) = setup.succeeded().await;

    let batch = deliveries(&template, &secret, n, 0);
    let (elapsed, mut latencies) = send_all(&setup.http, &url, batch).await;
    latencies.sort();
    let end_to_end = setup.wait_until(baseline + n as i64).await.max(elapsed);
    println!(
        "{mode:9} intake: {n} webhooks, {:.0} acknowledged/s, p50 {:.1} ms, p99 {:.1} ms",
        n as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
    );
    println!(
        "{mode:9} end to end (D365 throttling off): {n} orders in {:.1} s, {:.0} orders/s",
        end_to_end.as_secs_f64(),
        n as f64 / end_to_end.as_secs_f64()
    );

    // A fixed budget: 600 requests per 10 s window (60/s), told to the connection as an
    // operator would (`requests_per_5_minutes`).
    let (budget, window) = (600u32, 10u64);
    setup.d365_throttle(budget, window).await;
    setup
        .set_d365_budget(u64::from(budget) * 300 / window)
        .await;
    tokio::time::sleep(Duration::from_secs(window)).await;
    let m = 250;
    let (done_before, _) = setup.succeeded().await;
    let served_before = setup.d365_served().await;
    send_all(
        &setup.http,
        &url,
        deliveries(&template, &secret, m, 1_000_000),
    )
    .await;
    let elapsed = setup.wait_until(done_before + m as i64).await;
    // What the emulator's budget admitted (every lookup and every $batch operation, as F&O
    // counts them), over the time from the first send until the last order was done.
    let served = setup.d365_served().await.saturating_sub(served_before);
    let rate = served as f64 / elapsed.as_secs_f64();
    // A sliding window admits up to a full budget in every window the run touches, so a run
    // a few windows long may exceed the nominal rate; compare with that ceiling too.
    let windows = (elapsed.as_secs_f64() / window as f64).ceil().max(1.0);
    let ceiling = windows * f64::from(budget);
    let allowed = f64::from(budget) / window as f64;
    let (done, other) = setup.succeeded().await;
    let throttled = d365_throttled(&setup).await;
    println!(
        "{mode:9} D365 budget {budget} operations / {window} s: {m} orders in {:.1} s, {served} operations served = {:.1}/s = {:.0}% of the nominal rate, {:.0}% of the {ceiling:.0} the window could admit in that time; {} done, {} not done; {throttled} requests answered 429",
        elapsed.as_secs_f64(),
        rate,
        rate / allowed * 100.0,
        served as f64 / ceiling * 100.0,
        done - done_before,
        other,
    );
}

/// How many requests in the D365 emulator's log (the last 10,000) were answered 429.
async fn d365_throttled(setup: &Setup) -> usize {
    let log: Vec<Value> = setup
        .get_json(format!("{}/_sim/requests", setup.d365))
        .await;
    log.iter().filter(|r| r["status"] == 429).count()
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists; nothing to list.
    }
    let n: usize = std::env::var("BENCH_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    // `BENCH_MODES=cluster` (or `embedded`) runs one mode only, e.g. while profiling it.
    let modes = std::env::var("BENCH_MODES").unwrap_or_else(|_| "embedded,cluster".into());
    if modes.contains("embedded") {
        run("embedded", None, None, n).await;
    }
    if !modes.contains("cluster") {
        return;
    }
    match (
        std::env::var("SYNCLINE_BENCH_DATABASE_URL"),
        std::env::var("SYNCLINE_BENCH_REDIS_URL"),
    ) {
        (Ok(database), Ok(redis)) => run("cluster", Some(&database), Some(&redis), n).await,
        _ => println!(
            "cluster   skipped: set SYNCLINE_BENCH_DATABASE_URL (an empty database) and SYNCLINE_BENCH_REDIS_URL"
        ),
    }
}
