//! Health, readiness and the console's placeholder through real HTTP, on both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::sync::Arc;

use syncline_runner::{Dispatcher, InProcessDispatcher, RedisDispatcher, RedisDispatcherOptions};
use syncline_store::testing::{self, TestDatabase};
use syncline_web::{AppState, Application};
use tokio_util::sync::CancellationToken;

struct TestApp {
    base: String,
    client: reqwest::Client,
    stop: CancellationToken,
    _db: TestDatabase,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn spawn_app(db: TestDatabase, dispatcher: Arc<dyn Dispatcher>) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let state = AppState::new(db.store.clone(), dispatcher);
    let app = Application::build("127.0.0.1:0".parse().unwrap(), state)
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(app.run_until_stopped(async move { stopped.cancelled().await }));
    TestApp {
        base,
        client: reqwest::Client::new(),
        stop,
        _db: db,
    }
}

fn redis_url() -> String {
    std::env::var("SYNCLINE_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            panic!("SYNCLINE_TEST_REDIS_URL is not set: run tests/run.sh, which starts Redis.")
        })
}

async fn get_json(
    app: &TestApp,
    path: &str,
) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.json().await.unwrap(), headers)
}

#[tokio::test]
async fn embedded_default_is_healthy_and_ready() {
    let app = spawn_app(
        testing::sqlite().await,
        Arc::new(InProcessDispatcher::new()),
    )
    .await;
    let (status, body, headers) = get_json(&app, "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    let request_id = headers
        .get("x-request-id")
        .expect("every response carries a request id");
    assert_eq!(request_id.len(), 36, "a UUID: {request_id:?}");

    let (status, body, _) = get_json(&app, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["sqlite"], "ok");
    assert_eq!(body["checks"]["in-process"], "ok");
}

#[tokio::test]
async fn request_id_sent_by_the_caller_is_kept() {
    let app = spawn_app(
        testing::sqlite().await,
        Arc::new(InProcessDispatcher::new()),
    )
    .await;
    let response = app
        .client
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn cluster_mode_is_ready_with_postgres_and_redis() {
    let dispatcher = RedisDispatcher::new(RedisDispatcherOptions::new(redis_url())).unwrap();
    let app = spawn_app(testing::postgres().await, Arc::new(dispatcher)).await;
    let (status, body, _) = get_json(&app, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["postgres"], "ok");
    assert_eq!(body["checks"]["redis"], "ok");
}

#[tokio::test]
async fn readiness_names_redis_when_it_is_down() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dispatcher = RedisDispatcher::new(RedisDispatcherOptions::new(format!(
        "redis://127.0.0.1:{closed}"
    )))
    .unwrap();
    let app = spawn_app(testing::postgres().await, Arc::new(dispatcher)).await;
    let (status, body, _) = get_json(&app, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["failing"], serde_json::json!(["redis"]));
    assert_eq!(body["checks"]["postgres"], "ok");
    let (status, _, _) = get_json(&app, "/healthz").await;
    assert_eq!(status, 200, "liveness does not depend on Redis");
}

#[tokio::test]
async fn console_placeholder_and_its_stylesheet_are_served_by_the_binary() {
    let app = spawn_app(
        testing::sqlite().await,
        Arc::new(InProcessDispatcher::new()),
    )
    .await;
    let page = app
        .client
        .get(format!("{}/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "/ redirects to the console");
    assert_eq!(page.url().path(), "/console");
    let html = page.text().await.unwrap();
    assert!(html.contains("<title>Welcome · Syncline</title>"), "{html}");
    assert!(html.contains("SQLite"));
    let css = app
        .client
        .get(format!("{}/static/app.css", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css");
    let missing = app
        .client
        .get(format!("{}/static/nope.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
