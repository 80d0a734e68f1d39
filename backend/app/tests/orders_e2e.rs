//! Order to cash end to end, with real processes: `syncline demo` (web, workers and the
//! emulators), orders placed in the Shopify emulator and delivered by its webhook sender
//! (with duplicate deliveries), sales orders checked in the D365 emulator. In cluster mode two
//! more worker processes share PostgreSQL and a private Redis; one is killed with SIGKILL and
//! Redis is restarted in the middle of the burst.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use syncline_store::testing;

mod support;
use support::{Demo, Process, embedded_env, free_port, start_demo, syncline};

struct Emulators {
    http: reqwest::Client,
    shopify: String,
    shop: String,
    d365: String,
}

impl Emulators {
    fn of(demo: &Demo) -> Emulators {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Emulators {
            http: reqwest::Client::new(),
            shopify: demo.shopify.clone(),
            shop: demo.shop.clone(),
            d365: demo.d365.clone(),
        }
    }

    async fn shop_control(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/_sim/shops/{}/{path}", self.shopify, self.shop);
        let response = self
            .http
            .request(method, url)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// Places `count` orders with catalogue items only (every SKU exists in D365).
    async fn place_orders(&self, count: usize) -> Vec<String> {
        let answer = self
            .shop_control(
                reqwest::Method::POST,
                "orders/generate",
                json!({ "count": count, "custom_line_probability": 0.0, "guest_probability": 0.2 }),
            )
            .await;
        serde_json::from_value(answer["order_ids"].clone()).unwrap()
    }

    /// The Shopify orders with these ids, as the emulator holds them.
    async fn orders_with_ids(&self, ids: &[String]) -> Vec<Value> {
        let all: Vec<Value> = serde_json::from_value(
            self.shop_control(reqwest::Method::GET, "orders", Value::Null)
                .await,
        )
        .unwrap();
        all.into_iter()
            .filter(|o| ids.contains(&o["id"].to_string()))
            .collect()
    }

    async fn d365_orders(&self) -> Vec<Value> {
        self.http
            .get(format!("{}/_sim/orders", self.d365))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Sets D365's service protection budget (requests per window, concurrent requests).
    async fn d365_throttle(&self, requests: u32, window_secs: u64, concurrent: u32) {
        let response = self
            .http
            .put(format!("{}/_sim/throttle", self.d365))
            .json(&json!({ "requests_per_window": requests, "window_secs": window_secs, "max_concurrent": concurrent }))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }

    async fn d365_fault(&self, rule: Value) {
        let response = self
            .http
            .post(format!("{}/_sim/faults", self.d365))
            .json(&rule)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// Waits until `expected` runs succeeded and none is still pending, then returns D365's
    /// sales orders. Progress is read from our database: listing every sales order of the
    /// emulator is heavy, and the emulators share the server's runtime.
    async fn wait_for_sales_orders(
        &self,
        store: &syncline_store::Store,
        expected: i64,
        limit: Duration,
    ) -> Vec<Value> {
        use syncline_store::RunStatus;
        let started = Instant::now();
        let mut last_report = started;
        loop {
            let mut counts: HashMap<&'static str, i64> = HashMap::new();
            for tenant in store.list_tenants().await.unwrap() {
                for (status, count) in store.run_counts(tenant.id, None).await.unwrap() {
                    *counts.entry(status.as_str()).or_default() += count;
                }
            }
            let succeeded = counts
                .get(RunStatus::Succeeded.as_str())
                .copied()
                .unwrap_or(0);
            let pending: i64 = ["queued", "running", "retrying"]
                .iter()
                .map(|s| counts.get(s).copied().unwrap_or(0))
                .sum();
            if succeeded >= expected && pending == 0 {
                // Let any straggling duplicate delivery finish before counting.
                tokio::time::sleep(Duration::from_secs(2)).await;
                return self.d365_orders().await;
            }
            assert!(
                started.elapsed() < limit,
                "only {succeeded} of {expected} runs succeeded within {limit:?}: {counts:?}"
            );
            if last_report.elapsed() > Duration::from_secs(5) {
                eprintln!("after {:?}: {counts:?}", started.elapsed());
                last_report = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Every Shopify order is exactly one sales order, with the mapped fields.
fn assert_exactly_once(shopify: &[Value], d365: &[Value]) {
    let mut by_requisition: HashMap<String, Vec<&Value>> = HashMap::new();
    for order in d365 {
        let requisition = order["CustomerRequisitionNumber"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        by_requisition.entry(requisition).or_default().push(order);
    }
    for order in shopify {
        let id = order["id"].to_string();
        let name = order["name"].as_str().unwrap();
        let found = by_requisition.get(&id).map(Vec::as_slice).unwrap_or(&[]);
        assert_eq!(
            found.len(),
            1,
            "Shopify order {name} ({id}) must be exactly one sales order, found {}",
            found.len()
        );
        let sales_order = found[0];
        assert_eq!(sales_order["CustomersOrderReference"], name);
        assert_eq!(sales_order["CurrencyCode"], order["currency"]);
        // Lines: the same quantity per SKU (the template aggregates equal lines).
        let mut wanted: BTreeMap<String, i64> = BTreeMap::new();
        for line in order["line_items"].as_array().unwrap() {
            *wanted
                .entry(line["sku"].as_str().unwrap().to_owned())
                .or_default() += line["quantity"].as_i64().unwrap();
        }
        let mut got: BTreeMap<String, i64> = BTreeMap::new();
        for line in sales_order["SalesOrderLines"].as_array().unwrap() {
            let quantity: f64 = match &line["OrderedSalesQuantity"] {
                Value::String(text) => text.parse().unwrap(),
                other => other.as_f64().unwrap(),
            };
            *got.entry(line["ItemNumber"].as_str().unwrap().to_owned())
                .or_default() += quantity as i64;
        }
        assert_eq!(got, wanted, "lines of {name}");
        let email = order["email"].as_str().map(str::to_lowercase);
        if let Some(email) = email.filter(|e| !e.is_empty()) {
            assert_eq!(sales_order["Email"], email.as_str(), "{name}");
        }
    }
}

#[tokio::test]
async fn orders_become_sales_orders_exactly_once_in_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let env = embedded_env(dir.path(), free_port());
    let demo = start_demo(dir.path(), &env);
    let emulators = Emulators::of(&demo);
    // Half of all deliveries arrive twice, with the same webhook id.
    emulators
        .shop_control(
            reqwest::Method::PUT,
            "faults",
            json!({ "duplicate_webhook_rate": 0.5 }),
        )
        .await;
    // D365 throttles, then fails, for a while: runs retry and still succeed.
    emulators
        .d365_fault(json!({ "fault": { "kind": "throttle", "retry_after": 1 }, "target": "odata", "count": 5 }))
        .await;
    emulators
        .d365_fault(
            json!({ "fault": { "kind": "status", "status": 503 }, "target": "odata", "count": 5 }),
        )
        .await;
    let placed = emulators.place_orders(40).await;
    let store = open_sqlite(&dir.path().join("data/syncline.db")).await;
    let d365 = emulators
        .wait_for_sales_orders(&store, 40, Duration::from_secs(120))
        .await;
    let delivered = emulators.orders_with_ids(&placed).await;
    assert_eq!(delivered.len(), 40);
    assert_exactly_once(&delivered, &d365);
    let deliveries = emulators
        .shop_control(reqwest::Method::GET, "deliveries", Value::Null)
        .await;
    let creates = deliveries
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["topic"] == "orders/create")
        .count();
    assert!(
        creates > 40,
        "duplicates were really delivered ({creates} deliveries of 40 orders)"
    );

    // An unknown SKU is a dead letter that names the SKU; nothing reaches D365.
    let before = emulators.d365_orders().await.len();
    emulators
        .shop_control(
            reqwest::Method::POST,
            "orders/generate",
            json!({ "count": 1, "custom_line_probability": 1.0 }),
        )
        .await;
    let dead = wait_for_dead_run(&store, Duration::from_secs(30)).await;
    let error = dead.error.unwrap_or_default();
    assert!(
        error.starts_with("unknown SKU CUSTOM-"),
        "the error names the SKU: {error}"
    );
    assert_eq!(emulators.d365_orders().await.len(), before);

    // The D365 app's secret is rotated and its tokens revoked: the pair pauses with the reason,
    // and the order waits (retrying), neither lost nor dead-lettered.
    for path in ["auth/rotate-secret", "auth/revoke-tokens"] {
        let response = emulators
            .http
            .post(format!("{}/_sim/{path}", emulators.d365))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path}");
    }
    let waiting = emulators.place_orders(1).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let tenant = store.list_tenants().await.unwrap()[0].id;
    let paused = loop {
        let pairs = store.list_pairs(tenant).await.unwrap();
        if let Some(pair) = pairs
            .into_iter()
            .find(|p| p.status == syncline_store::PairStatus::Paused)
        {
            break pair;
        }
        assert!(Instant::now() < deadline, "the pair did not pause");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let reason = paused.pause_reason.unwrap_or_default();
    assert!(
        reason.starts_with("D365 refused the credentials"),
        "the reason says what to fix: {reason}"
    );
    let page = store
        .list_runs(
            tenant,
            &syncline_store::RunFilter {
                shopify_ref: emulators.orders_with_ids(&waiting).await[0]["name"]
                    .as_str()
                    .map(str::to_owned),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        page.runs.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![syncline_store::RunStatus::Retrying],
        "held for the pair, not dead"
    );
    drop(demo);
}

async fn open_sqlite(path: &Path) -> syncline_store::Store {
    syncline_store::Store::connect(&syncline_store::StoreOptions::Sqlite(
        syncline_store::SqliteSettings {
            path: PathBuf::from(path),
        },
    ))
    .await
    .unwrap()
}

async fn wait_for_dead_run(store: &syncline_store::Store, limit: Duration) -> syncline_store::Run {
    let deadline = Instant::now() + limit;
    loop {
        for tenant in store.list_tenants().await.unwrap() {
            let page = store
                .list_runs(
                    tenant.id,
                    &syncline_store::RunFilter {
                        status: Some(syncline_store::RunStatus::Dead),
                        ..Default::default()
                    },
                    None,
                    10,
                )
                .await
                .unwrap();
            if let Some(run) = page.runs.into_iter().next() {
                return run;
            }
        }
        assert!(Instant::now() < deadline, "no dead letter appeared");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A private Redis that the test may stop and start again.
struct PrivateRedis {
    port: u16,
    process: Option<Process>,
}

impl PrivateRedis {
    fn start(port: u16) -> PrivateRedis {
        let mut redis = PrivateRedis {
            port,
            process: None,
        };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill_hard();
        }
    }

    fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (tests/run.sh installs it)");
        self.process = Some(Process(child));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[tokio::test]
async fn cluster_workers_survive_a_killed_worker_and_a_redis_restart_exactly_once() {
    let db = testing::postgres().await;
    let mut redis = PrivateRedis::start(free_port());
    let dir = tempfile::tempdir().unwrap();
    let mut env = embedded_env(dir.path(), free_port());
    env.push(("DATABASE_URL".into(), db.url.clone()));
    env.push(("REDIS_URL".into(), redis.url()));
    let demo = start_demo(dir.path(), &env);
    let worker = |n: usize| {
        syncline(
            dir.path(),
            &env,
            &["serve", "--role", "worker"],
            &format!("worker-{n}.log"),
        )
    };
    let mut first = worker(1);
    let _second = worker(2);
    let emulators = Emulators::of(&demo);
    emulators
        .shop_control(
            reqwest::Method::PUT,
            "faults",
            json!({ "duplicate_webhook_rate": 0.2 }),
        )
        .await;
    // This test is about crashes, not D365's budget (a burst of this size exceeds the default
    // 6,000 requests per 5 minutes).
    emulators.d365_throttle(1_000_000, 300, 1000).await;

    // A burst of 1,000 orders at about 25 a second (what a debug build on two cores absorbs
    // while also running both emulators); in its course one worker dies (SIGKILL), Redis
    // restarts empty, and the worker comes back.
    let total = 1000;
    let mut placed = Vec::new();
    for step in 0..40 {
        placed.extend(emulators.place_orders(total / 40).await);
        match step {
            10 => first.kill_hard(),
            18 => redis.restart(),
            24 => first = worker(1),
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    let d365 = emulators
        .wait_for_sales_orders(&db.store, total as i64, Duration::from_secs(300))
        .await;
    let delivered = emulators.orders_with_ids(&placed).await;
    assert_eq!(delivered.len(), total);
    assert_exactly_once(&delivered, &d365);
    drop(first);
    drop(demo);
    redis.stop();
}
