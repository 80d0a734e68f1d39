//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use syncline_sim_shopify::{Config, ShopifyEmulator, ShopifyInfo, WebhookConfig};

/// Loads a document from `tests/documents/`.
#[macro_export]
macro_rules! doc {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/documents/",
            $name,
            ".graphql"
        ))
    };
}

pub fn test_config() -> Config {
    Config {
        seed: 42,
        webhooks: WebhookConfig {
            time_scale: 0.0002,
            timeout: Duration::from_secs(5),
            ..WebhookConfig::default()
        },
        ..Config::default()
    }
}

pub async fn start() -> ShopifyEmulator {
    syncline_sim_shopify::start(test_config()).await.unwrap()
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub fn gql_url(info: &ShopifyInfo, version: &str) -> String {
    format!("{}/admin/api/{version}/graphql.json", info.url)
}

/// Posts a GraphQL document; returns (status, body).
pub async fn gql_v(
    c: &reqwest::Client,
    info: &ShopifyInfo,
    version: &str,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let r = c
        .post(gql_url(info, version))
        .header("X-Shopify-Access-Token", &info.access_token)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

pub async fn gql(c: &reqwest::Client, info: &ShopifyInfo, query: &str, variables: Value) -> Value {
    let (status, body) = gql_v(c, info, &info.api_version, query, variables).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls `f` until it yields `Some`, or panics after `deadline`.
pub async fn wait_for<T, F, Fut>(deadline: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One webhook request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A webhook receiver answering with the statuses in `script` (last one repeats).
pub struct Receiver {
    pub addr: SocketAddr,
    pub got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }
    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

pub async fn receiver(script: Vec<u16>) -> Receiver {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let got2 = got.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let got = got2.clone();
            let script = script.clone();
            async move {
                let n = {
                    let mut g = got.lock().unwrap();
                    g.push(Received {
                        at: Instant::now(),
                        headers,
                        body,
                    });
                    g.len()
                };
                let code = script.get(n - 1).or(script.last()).copied().unwrap_or(200);
                StatusCode::from_u16(code).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Receiver { addr, got }
}

/// The directory holding the shared fixtures (`SYNCLINE_SHARED_DIR`, else
/// `shared/` beside the repository).
pub fn shared_dir() -> std::path::PathBuf {
    std::env::var_os("SYNCLINE_SHARED_DIR")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../../shared")
        })
}

/// The interpreter for contract tests; fails loudly when it is not set.
pub fn python() -> String {
    match std::env::var("SYNCLINE_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => panic!(
            "SYNCLINE_TEST_PYTHON is not set: point it at a Python with tests/requirements.txt \
             installed (python3 -m venv /work/venv && /work/venv/bin/pip install -r tests/requirements.txt; \
             export SYNCLINE_TEST_PYTHON=/work/venv/bin/python). This contract test never skips."
        ),
    }
}

/// The repository root.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}
