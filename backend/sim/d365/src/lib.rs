//! Emulator of Dynamics 365 F&O OData and the Entra ID token endpoint.
//!
//! Written from Microsoft's public documentation and `shared/API_FACTS.md`,
//! independently of `connectors/d365`. Start it with [`start`]; drive it from
//! tests through [`Control`] or over HTTP under `/_sim/` (see the README).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod auth;
mod batch;
mod control;
pub mod faults;
pub mod filter;
mod odata;
pub mod schema;
pub mod seed;
mod store;
pub mod throttle;
mod tls;

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

pub use control::Control;
pub use faults::{Fault, FaultRule, Target};
pub use seed::{ProductSeed, SeedSpec};
pub use throttle::ThrottleConfig;

use crate::auth::{App, AuthState, Denied};
use crate::odata::{Ctx, JSON_CT, OpResponse};

/// Errors of the emulator's public API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding or serving the listener failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    /// Generating or loading the TLS certificate failed.
    #[error("tls: {0}")]
    Tls(String),
    /// No such entity set.
    #[error("unknown entity set '{0}'")]
    UnknownSet(String),
    /// The addressed row does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A write was refused by the emulated F&O.
    #[error("write refused: {0}")]
    Write(String),
}

/// Emulator settings. `Config::default()` listens on 127.0.0.1 with an
/// ephemeral port, plain HTTP, seed 1.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Seed for identities and master data.
    pub seed: u64,
    /// When set, serve HTTPS and write the CA certificate (PEM) to this path.
    pub tls: Option<PathBuf>,
    /// Entra tenant id; derived from the seed when `None`.
    pub tenant_id: Option<String>,
    /// App (client) id; derived from the seed when `None`.
    pub client_id: Option<String>,
    /// Client secret; derived from the seed when `None`.
    pub client_secret: Option<String>,
    /// The app user's default company (`dataAreaId`).
    pub default_company: String,
    /// Server-driven page size.
    pub page_size: usize,
    /// Lifetime of issued access tokens.
    pub token_lifetime: Duration,
    /// Service-protection budget.
    pub throttle: ThrottleConfig,
    /// Master data to seed.
    pub data: SeedSpec,
    /// How many requests the log keeps.
    pub max_logged_requests: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            seed: 1,
            tls: None,
            tenant_id: None,
            client_id: None,
            client_secret: None,
            default_company: "usmf".into(),
            page_size: 10_000,
            token_lifetime: Duration::from_secs(3599),
            throttle: ThrottleConfig::default(),
            data: SeedSpec::default(),
            max_logged_requests: 10_000,
        }
    }
}

/// What a client needs to connect (printed by `syncline sim`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct D365Info {
    /// Environment base URL; `/data/...` is appended to it.
    pub url: String,
    /// Entra v2 token endpoint.
    pub token_url: String,
    /// Entra tenant id.
    pub tenant_id: String,
    /// App (client) id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
    /// Default legal entity.
    pub data_area_id: String,
}

/// One request the emulator received.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Sequence number since start.
    pub seq: u64,
    /// When it arrived (RFC 3339).
    pub at: String,
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// Response status.
    pub status: u16,
    /// Time to produce the response, in milliseconds.
    pub duration_ms: f64,
    /// Client id of the bearer token, for authenticated OData calls.
    pub client_id: Option<String>,
    /// Injected fault that answered it, if any.
    pub fault: Option<String>,
}

#[derive(Debug)]
struct Settings {
    default_company: String,
    page_size: usize,
    seed: u64,
    spec: SeedSpec,
    max_logged: usize,
}

#[derive(Debug, Default)]
struct RequestLog {
    next: u64,
    entries: VecDeque<RequestRecord>,
}

/// State shared by every handler.
#[derive(Debug)]
pub(crate) struct Shared {
    base_url: String,
    data_area: String,
    settings: Mutex<Settings>,
    store: Mutex<store::Store>,
    auth: Mutex<AuthState>,
    throttle: Mutex<throttle::Throttle>,
    faults: Mutex<Vec<FaultRule>>,
    log: Mutex<RequestLog>,
}

impl Shared {
    fn default_company(&self) -> String {
        lock(&self.settings).default_company.clone()
    }

    fn page_size(&self) -> usize {
        lock(&self.settings).page_size
    }
}

/// Locks a mutex, recovering from poisoning: a panicked handler must not
/// take the whole emulator down with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running emulator.
#[derive(Debug)]
pub struct D365Emulator {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl D365Emulator {
    /// Connection details for clients.
    pub fn info(&self) -> D365Info {
        self.control().info()
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The control API (state, seeding, faults, credentials).
    pub fn control(&self) -> Control {
        Control::new(self.shared.clone())
    }

    /// Stops the listener and waits for the server task.
    pub async fn shutdown(self) {
        self.handle.graceful_shutdown(Some(Duration::from_secs(2)));
        let _ = self.task.await;
    }
}

fn identity(seed: u64) -> (String, String, String) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_d365);
    let mut uuid = || {
        let mut b = [0u8; 16];
        rng.fill(&mut b);
        uuid::Builder::from_random_bytes(b).into_uuid().to_string()
    };
    let tenant = uuid();
    let client = uuid();
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~-";
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5ec2e7);
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| CHARS[rng.random_range(0..62)] as char)
            .collect()
    };
    // Entra secret values look like `abc8Q~` followed by 34 characters.
    let secret = format!("{}8Q~{}", pick(3), pick(34));
    (tenant, client, secret)
}

/// Starts the emulator on `config.listen` and returns once it accepts connections.
pub async fn start(config: Config) -> Result<D365Emulator, Error> {
    let listener = std::net::TcpListener::bind(config.listen)?;
    listener.set_nonblocking(true)?;
    let local_addr = listener.local_addr()?;
    let host = match local_addr.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    let host_text = match host {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let base_url = format!("{scheme}://{host_text}:{}", local_addr.port());
    let (tenant, client, secret) = identity(config.seed);
    let auth = AuthState {
        tenant_id: config.tenant_id.clone().unwrap_or(tenant),
        apps: vec![App {
            client_id: config.client_id.clone().unwrap_or(client),
            secret: config.client_secret.clone().unwrap_or(secret),
            secret_expired: false,
            registered_in_fo: true,
        }],
        tokens: Default::default(),
        lifetime: config.token_lifetime,
    };
    let shared = Arc::new(Shared {
        base_url,
        data_area: config.default_company.to_lowercase(),
        settings: Mutex::new(Settings {
            default_company: config.default_company.to_lowercase(),
            page_size: config.page_size.max(1),
            seed: config.seed,
            spec: config.data.clone(),
            max_logged: config.max_logged_requests,
        }),
        store: Mutex::new(seed::seed(&config.data, config.seed)),
        auth: Mutex::new(auth),
        throttle: Mutex::new(throttle::Throttle::new(config.throttle.clone())),
        faults: Mutex::new(Vec::new()),
        log: Mutex::new(RequestLog::default()),
    });
    let app = router(shared.clone()).into_make_service();
    let handle = axum_server::Handle::new();
    let task = match &config.tls {
        Some(path) => {
            let rustls_config = tls::server_config(host, path)?;
            let server = axum_server::tls_rustls::from_tcp_rustls(listener, rustls_config)?
                .handle(handle.clone());
            tokio::spawn(server.serve(app))
        }
        None => {
            let server = axum_server::from_tcp(listener)?.handle(handle.clone());
            tokio::spawn(server.serve(app))
        }
    };
    if handle.listening().await.is_none() {
        return Err(Error::Io(std::io::Error::other("server failed to start")));
    }
    tracing::info!(%local_addr, "d365 emulator listening");
    Ok(D365Emulator {
        shared,
        local_addr,
        handle,
        task,
    })
}

/// The emulator's routes: Entra, OData, control plane.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(auth::token_v2))
        .route("/{tenant}/oauth2/token", post(auth::token_v1))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(auth::openid_v2),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(auth::openid_v1),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(auth::jwks))
        .route("/{tenant}/discovery/keys", get(auth::jwks))
        .route("/common/discovery/instance", get(auth::instance_discovery))
        .route("/data", axum::routing::any(data))
        .route("/data/", axum::routing::any(data))
        .route("/data/{*rest}", axum::routing::any(data))
        .nest("/_sim", control::router())
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            observe,
        ))
        .with_state(shared)
}

/// Client id of the authenticated caller, passed to the request log.
#[derive(Debug, Clone)]
struct ClientTag(String);

/// Releases a concurrency slot when the request ends, however it ends.
struct InFlight {
    shared: Arc<Shared>,
    client: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.shared.throttle).release(&self.client);
    }
}

fn to_response(r: OpResponse) -> Response {
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() = r.status;
    let h = resp.headers_mut();
    for (k, v) in r.headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            h.append(name, value);
        }
    }
    h.insert("OData-Version", HeaderValue::from_static("4.0"));
    resp
}

fn unauthorized(d: Denied) -> Response {
    let reason = match d {
        Denied::Missing => "missing bearer token",
        Denied::Invalid => "invalid token",
        Denied::Expired => "token expired",
        Denied::Revoked => "token revoked",
        Denied::NotRegistered => "application is not registered in Finance and Operations",
    };
    let mut resp = StatusCode::UNAUTHORIZED.into_response();
    let h = resp.headers_mut();
    h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    if let Ok(v) = HeaderValue::from_str(reason) {
        h.insert("X-Sim-Reason", v);
    }
    resp
}

/// Injected latency for a `/data` request, served while it holds its
/// concurrency slot (a slow F&O keeps the caller's request in flight).
#[derive(Debug, Clone, Copy)]
struct Delay(Duration);

/// Every `/data` request: authenticate, apply service protection, run.
async fn data(
    State(shared): State<Arc<Shared>>,
    delay: Option<axum::Extension<Delay>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let checked = lock(&shared.auth).check(&headers);
    let client = match checked {
        Ok(c) => c,
        Err(d) => return unauthorized(d),
    };
    let acquired = lock(&shared.throttle).acquire(&client);
    if let Err(wait) = acquired {
        let mut r = to_response(OpResponse::throttled(wait));
        r.extensions_mut().insert(ClientTag(client));
        return r;
    }
    let _slot = InFlight {
        shared: shared.clone(),
        client: client.clone(),
    };
    if let Some(axum::Extension(Delay(d))) = delay {
        tokio::time::sleep(d).await;
    }
    let path = uri.path().strip_prefix("/data").unwrap_or("");
    let path = path.trim_start_matches('/');
    let target = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let mut resp = if path == "$batch" && method == axum::http::Method::POST {
        let (status, ct, body) = batch::handle(&shared, &client, &headers, &body);
        let mut r = Response::new(Body::from(body));
        *r.status_mut() = status;
        if let Ok(v) = HeaderValue::from_str(&ct) {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        r.headers_mut()
            .insert("OData-Version", HeaderValue::from_static("4.0"));
        r
    } else {
        let prefer = headers
            .get("Prefer")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let default_company = shared.default_company();
        let if_match = headers
            .get(header::IF_MATCH)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let ctx = Ctx {
            if_match: if_match.as_deref(),
            base_url: &shared.base_url,
            default_company: &default_company,
            page_size: shared.page_size(),
            prefer: prefer.as_deref(),
            ieee754: odata::wants_ieee754(
                headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
            ) || odata::wants_ieee754(
                headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok()),
            ),
        };
        let mut undo = Vec::new();
        let op = {
            let mut store = lock(&shared.store);
            odata::execute(&ctx, &mut store, &method, &target, &body, &mut undo).0
        };
        to_response(op)
    };
    resp.extensions_mut().insert(ClientTag(client));
    resp
}

fn fault_response(f: &Fault) -> Response {
    match f {
        Fault::Status { status } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            to_response(OpResponse::error(status, "An error has occurred."))
        }
        Fault::Throttle { retry_after } => to_response(OpResponse::throttled(*retry_after)),
        Fault::ConnectionReset => {
            // A body that fails before its first byte makes hyper abort the
            // connection, so the client sees the socket close mid-exchange.
            let stream = futures::stream::once(async {
                Err::<bytes::Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected connection reset",
                ))
            });
            let mut r = Response::new(Body::from_stream(stream));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_CT));
            r
        }
        Fault::Latency { .. } => StatusCode::OK.into_response(),
    }
}

/// Applies injected faults and records every non-control request.
async fn observe(State(shared): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/_sim") {
        return next.run(req).await;
    }
    let started = Instant::now();
    let at = store::fmt_time(chrono::Utc::now());
    let method = req.method().to_string();
    let query = req.uri().query().map(str::to_string);
    let hits = faults::take(&mut lock(&shared.faults), &path);
    let mut answered = None;
    let is_data = path.starts_with("/data");
    let mut delay = Duration::ZERO;
    for f in &hits {
        match f {
            Fault::Latency { ms } if is_data => delay += Duration::from_millis(*ms),
            Fault::Latency { ms } => tokio::time::sleep(Duration::from_millis(*ms)).await,
            other => {
                answered = Some(other.clone());
                break;
            }
        }
    }
    if !delay.is_zero() {
        req.extensions_mut().insert(Delay(delay));
    }
    let resp = match &answered {
        Some(f) => fault_response(f),
        None => next.run(req).await,
    };
    let record = RequestRecord {
        seq: 0,
        at,
        method,
        path,
        query,
        status: resp.status().as_u16(),
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        client_id: resp.extensions().get::<ClientTag>().map(|c| c.0.clone()),
        fault: answered.map(|f| format!("{f:?}")),
    };
    let max = lock(&shared.settings).max_logged;
    let mut log = lock(&shared.log);
    let seq = log.next;
    log.next += 1;
    log.entries.push_back(RequestRecord { seq, ..record });
    while log.entries.len() > max {
        log.entries.pop_front();
    }
    resp
}
