//! Health, readiness and the console's entry through real HTTP, on both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::sync::Arc;

use common::{Mode, spawn_app};
use syncline_runner::{RedisDispatcher, RedisDispatcherOptions};
use syncline_store::testing;
use syncline_web::auth::throttle::LoginThrottle;
use syncline_web::mail::Mailer;
use syncline_web::{AppState, Application, WebSettings};
use tokio_util::sync::CancellationToken;

async fn get_json(url: String) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.json().await.unwrap(), headers)
}

#[tokio::test]
async fn embedded_default_is_healthy_and_ready() {
    let app = spawn_app(Mode::Embedded).await;
    let (status, body, headers) = get_json(app.url("/healthz")).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    let request_id = headers
        .get("x-request-id")
        .expect("every response carries a request id");
    assert_eq!(request_id.len(), 36, "a UUID: {request_id:?}");

    let (status, body, _) = get_json(app.url("/readyz")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["sqlite"], "ok");
    assert_eq!(body["checks"]["in-process"], "ok");
}

#[tokio::test]
async fn request_id_sent_by_the_caller_is_kept() {
    let app = spawn_app(Mode::Embedded).await;
    let response = reqwest::Client::new()
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn cluster_mode_is_ready_with_postgres_and_redis() {
    let app = spawn_app(Mode::Cluster).await;
    let (status, body, _) = get_json(app.url("/readyz")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["postgres"], "ok");
    assert_eq!(body["checks"]["redis"], "ok");
}

#[tokio::test]
async fn readiness_names_redis_when_it_is_down() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dispatcher = RedisDispatcher::new(RedisDispatcherOptions::new(format!(
        "redis://127.0.0.1:{closed}"
    )))
    .unwrap();
    let db = testing::postgres().await;
    let settings = WebSettings {
        public_url: "http://127.0.0.1".parse().unwrap(),
        session_secret: common::SESSION_SECRET.to_vec(),
        mailer: Mailer::new(None, "x@y.z").unwrap(),
        throttle: LoginThrottle::in_memory(),
        shopify_app: None,
        sandbox: None,
    };
    let app = Application::build(
        "127.0.0.1:0".parse().unwrap(),
        AppState::new(db.store.clone(), Arc::new(dispatcher), settings),
    )
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(app.run_until_stopped(async move { stopped.cancelled().await }));

    let (status, body, _) = get_json(format!("{base}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["failing"], serde_json::json!(["redis"]));
    assert_eq!(body["checks"]["postgres"], "ok");
    let (status, _, _) = get_json(format!("{base}/healthz")).await;
    assert_eq!(status, 200, "liveness does not depend on Redis");
    stop.cancel();
}

#[tokio::test]
async fn the_console_asks_strangers_to_sign_in_and_serves_its_own_assets() {
    let app = spawn_app(Mode::Embedded).await;
    let page = reqwest::get(app.url("/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.url().path(), "/login", "/ → /console → sign in");
    let html = page.text().await.unwrap();
    assert!(html.contains("<title>Sign in · Syncline</title>"), "{html}");
    let css = reqwest::get(app.url("/static/app.css")).await.unwrap();
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css");
    assert_eq!(
        reqwest::get(app.url("/static/nope.js"))
            .await
            .unwrap()
            .status(),
        404
    );
}
