//! Metering end to end, with the real `syncline demo` process (web intake, workers, the
//! emulators): orders delivered by the Shopify emulator's webhook sender with duplicate
//! deliveries, D365 answering 503 and 429 so runs retry, then every run replayed from the
//! API. Each order is one billable transaction, however often it was delivered, retried or
//! replayed; partner API calls are counted for fair use.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use syncline_store::{RunStatus, Store, TenantId};

mod support;
use support::{Demo, embedded_env, free_port, start_demo};

async fn open_sqlite(path: &Path) -> Store {
    Store::connect(&syncline_store::StoreOptions::Sqlite(
        syncline_store::SqliteSettings {
            path: PathBuf::from(path),
        },
    ))
    .await
    .unwrap()
}

async fn control(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Value,
) -> Value {
    let response = http.request(method, &url).json(&body).send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.json().await.unwrap_or(Value::Null)
}

/// Waits until at least `succeeded` runs succeeded and none is pending.
async fn settle(store: &Store, tenant: TenantId, succeeded: i64, limit: Duration) {
    let started = Instant::now();
    loop {
        let counts = store.run_counts(tenant, None).await.unwrap();
        let count = |status: RunStatus| {
            counts
                .iter()
                .find(|(s, _)| *s == status)
                .map_or(0, |(_, n)| *n)
        };
        let pending =
            count(RunStatus::Queued) + count(RunStatus::Running) + count(RunStatus::Retrying);
        if count(RunStatus::Succeeded) >= succeeded && pending == 0 {
            // Let a straggling duplicate delivery finish before counting.
            tokio::time::sleep(Duration::from_secs(2)).await;
            return;
        }
        assert!(
            started.elapsed() < limit,
            "runs did not settle within {limit:?}: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Signs in to the demo console; the client keeps the session cookie. Returns the CSRF token
/// the API wants with session calls.
async fn sign_in(demo: &Demo) -> (reqwest::Client, String, String) {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let base = demo.console.trim_end_matches("/console").to_owned();
    let csrf_of = |html: &str| {
        let marker = "name=\"csrf\" value=\"";
        let start = html.find(marker).unwrap() + marker.len();
        html[start..].split('"').next().unwrap().to_owned()
    };
    let login = client
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = client
        .post(format!("{base}/login"))
        .form(&[
            ("email", demo.email.as_str()),
            ("password", demo.password.as_str()),
            ("csrf", csrf_of(&login).as_str()),
            ("next", ""),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "login: {}",
        response.status()
    );
    let account = client
        .get(format!("{base}/console/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&account);
    (client, base, csrf)
}

#[tokio::test]
async fn each_order_is_billed_once_through_duplicates_retries_and_replays() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let env = embedded_env(dir.path(), free_port());
    let demo = start_demo(dir.path(), &env);
    let http = reqwest::Client::new();
    let shop = |path: &str| format!("{}/_sim/shops/{}/{path}", demo.shopify, demo.shop);
    control(
        &http,
        reqwest::Method::PUT,
        shop("faults"),
        json!({ "duplicate_webhook_rate": 0.5 }),
    )
    .await;
    for fault in [
        json!({ "fault": { "kind": "status", "status": 503 }, "target": "odata", "count": 6 }),
        json!({ "fault": { "kind": "throttle", "retry_after": 1 }, "target": "odata", "count": 3 }),
    ] {
        control(
            &http,
            reqwest::Method::POST,
            format!("{}/_sim/faults", demo.d365),
            fault,
        )
        .await;
    }
    const ORDERS: i64 = 20;
    let placed = control(
        &http,
        reqwest::Method::POST,
        shop("orders/generate"),
        json!({ "count": ORDERS, "custom_line_probability": 0.0, "guest_probability": 0.2 }),
    )
    .await;
    let placed: Vec<String> = serde_json::from_value(placed["order_ids"].clone()).unwrap();
    assert_eq!(placed.len() as i64, ORDERS);

    let store = open_sqlite(&dir.path().join("data/syncline.db")).await;
    let tenant = store.list_tenants().await.unwrap()[0].id;
    let pair = store
        .list_pairs(tenant)
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.status == syncline_store::PairStatus::Active)
        .unwrap();
    settle(&store, tenant, ORDERS, Duration::from_secs(120)).await;

    let deliveries = control(&http, reqwest::Method::GET, shop("deliveries"), Value::Null).await;
    let creates = deliveries
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["topic"] == "orders/create")
        .count() as i64;
    assert!(
        creates > ORDERS,
        "duplicates were really delivered ({creates} deliveries of {ORDERS} orders)"
    );
    let retried: i64 = store
        .list_runs(tenant, &syncline_store::RunFilter::default(), None, 200)
        .await
        .unwrap()
        .runs
        .iter()
        .map(|r| r.attempts - 1)
        .sum();
    assert!(retried > 0, "some runs were really retried");

    let today = chrono::Utc::now().date_naive();
    let usage = |store: Store| async move {
        let rows = store
            .usage(tenant, today, today.succ_opt().unwrap())
            .await
            .unwrap();
        (
            rows.iter().map(|r| r.transactions).sum::<i64>(),
            rows.iter().map(|r| r.api_calls).sum::<i64>(),
        )
    };
    let events = store.billable_events(tenant, pair.id).await.unwrap();
    assert_eq!(
        events.len() as i64,
        ORDERS,
        "one billable transaction per order: {events:?}"
    );
    let mut records: Vec<&str> = events.iter().map(|(_, _, r)| r.as_str()).collect();
    records.sort_unstable();
    let mut expected: Vec<&str> = placed.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(
        records, expected,
        "the billed records are the placed orders"
    );
    assert!(
        events
            .iter()
            .all(|(flow, action, _)| flow == "orders" && action == "create")
    );
    // Calls are written by the workers' meter once a second.
    let mut waited = 0;
    let (transactions, calls_before) = loop {
        let (transactions, calls) = usage(store.clone()).await;
        if calls >= ORDERS * 2 || waited >= 50 {
            break (transactions, calls);
        }
        waited += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(transactions, ORDERS);
    assert!(
        calls_before >= ORDERS * 2,
        "partner calls counted: {calls_before}"
    );

    // Replay every run from the API: new attempts, same records, no new billable transaction.
    let (client, base, csrf) = sign_in(&demo).await;
    let replayed: Value = client
        .post(format!("{base}/api/v1/runs/replay"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "status": "succeeded", "limit": 1000 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replayed["replayed"].as_i64(), Some(ORDERS), "{replayed}");
    settle(&store, tenant, ORDERS, Duration::from_secs(120)).await;
    let (transactions, calls_after) = usage(store.clone()).await;
    assert_eq!(transactions, ORDERS, "replays are not billed again");
    // A replayed creation finds its link and calls nobody; calls are never subtracted.
    assert!(
        calls_after >= calls_before,
        "partner calls: {calls_before} then {calls_after}"
    );
    assert_eq!(
        store.billable_events(tenant, pair.id).await.unwrap().len() as i64,
        ORDERS
    );

    // The owner's billing API shows the same figures (the demo pair is a sandbox pair: its
    // transactions are charted but free of fair-use accounting).
    let billing: Value = client
        .get(format!("{base}/api/v1/billing"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let charted: i64 = billing["usage"]["daily"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["transactions"].as_i64().unwrap())
        .sum();
    assert_eq!(charted, ORDERS, "{billing}");
    assert_eq!(
        billing["usage"]["sandbox_transactions"].as_i64(),
        Some(ORDERS)
    );
    assert_eq!(billing["subscription"]["plan"]["code"], "connect-monthly");
    // The demo's first invoice (last month, issued by the billing pass) is there.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if !store.list_invoices(tenant).await.unwrap().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the billing pass issued no invoice"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let invoice = &store.list_invoices(tenant).await.unwrap()[0];
    assert_eq!(invoice.number, 1);
    assert_eq!(invoice.subtotal.to_string(), "699.00");
    assert_eq!(invoice.total.to_string(), "838.80");
    drop(demo);
}
