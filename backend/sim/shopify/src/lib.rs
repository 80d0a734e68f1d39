//! Emulator of the Shopify Admin API and webhook sender.
//!
//! One process hosts many shops, each reachable through a
//! `{name}.myshopify.com` Host header or the `/shops/{name}` path prefix.
//! Written from Shopify's public documentation (see `shared/API_FACTS.md`);
//! it shares nothing with the connectors. See the README for the control
//! plane.

pub mod cost;
pub mod generator;
pub mod gql;
mod http;
pub mod model;
mod oauth;
pub mod shop;
pub mod webhooks;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

pub use generator::{SeedSpec, TrafficSpec};
pub use shop::{DeliveryRecord, Faults, Plan, RequestRecord, RestLimit, Subscription};
pub use webhooks::WebhookConfig;

/// Errors of the emulator's Rust API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listener could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The HTTP client for webhooks could not be built.
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// No shop has that name.
    #[error("no shop named {0:?}")]
    UnknownShop(String),
    /// A shop with that name exists already.
    #[error("a shop named {0:?} exists already")]
    ShopExists(String),
    /// An app with that name or token is installed on the shop already.
    #[error("an app named {0:?} (or with that token) is installed already")]
    AppExists(String),
    /// The shop name is not a valid myshopify subdomain.
    #[error("invalid shop name {0:?}: use lowercase letters, digits and dashes")]
    InvalidShopName(String),
}

/// Settings of one emulator process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Where to listen (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Seed for everything generated (ids, traffic).
    pub seed: u64,
    /// Name of the default shop (`{name}.myshopify.com`).
    pub shop_name: String,
    /// Admin API access token of the default shop.
    pub access_token: String,
    /// API secret (webhook signing key) of the default shop.
    pub api_secret: String,
    /// API version reported in `info()`.
    pub api_version: String,
    /// Cost bucket of new shops.
    pub plan: Plan,
    /// REST bucket of new shops.
    pub rest_limit: RestLimit,
    /// Webhook retry settings.
    pub webhooks: WebhookConfig,
    /// What new shops are seeded with.
    pub seed_data: SeedSpec,
    /// Base URL the emulator advertises (bulk result URLs, `info().url`);
    /// defaults to `http://{local_addr}`.
    pub public_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 1,
            shop_name: "syncline-sim".into(),
            access_token: "shpat_sim_00000000000000000000000000000000".into(),
            api_secret: "shpss_sim_00000000000000000000000000000000".into(),
            api_version: "2025-01".into(),
            plan: Plan::default(),
            rest_limit: RestLimit::default(),
            webhooks: WebhookConfig::default(),
            seed_data: SeedSpec::default(),
            public_url: None,
        }
    }
}

/// What a client needs to talk to one shop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShopifyInfo {
    /// Base URL; append `/admin/api/{version}/graphql.json`.
    pub url: String,
    /// `{name}.myshopify.com`.
    pub shop_domain: String,
    /// `X-Shopify-Access-Token` value.
    pub access_token: String,
    /// Webhook signing secret.
    pub api_secret: String,
    /// API version to use.
    pub api_version: String,
}

/// A shop to create through the control plane.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ShopSpec {
    /// Subdomain (`acme` → `acme.myshopify.com`).
    pub name: String,
    /// Access token (generated when absent).
    pub access_token: Option<String>,
    /// API secret (generated when absent).
    pub api_secret: Option<String>,
    /// Cost bucket (the emulator's default when absent).
    pub plan: Option<Plan>,
    /// REST bucket.
    pub rest_limit: Option<RestLimit>,
    /// Seed data (the emulator's default when absent).
    pub seed: Option<SeedSpec>,
}

/// Another app to install on a shop.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AppSpec {
    /// Name, unique within the shop.
    pub name: String,
    /// Access token (generated when absent).
    pub access_token: Option<String>,
    /// API secret (generated when absent).
    pub api_secret: Option<String>,
}

/// One emulated shop.
#[derive(Debug)]
pub struct Shop {
    /// Subdomain.
    pub name: String,
    /// `{name}.myshopify.com`.
    pub domain: String,
    /// Numeric shop id.
    pub id: u64,
    /// Access token.
    pub access_token: String,
    /// API secret.
    pub api_secret: String,
    /// Shop currency.
    pub currency: String,
    seed: u64,
    apps: RwLock<Vec<shop::App>>,
    /// Authorization codes handed out by the OAuth consent screen: code → app name.
    oauth_codes: Mutex<std::collections::HashMap<String, String>>,
    data: Mutex<shop::ShopData>,
    traffic: Mutex<Option<JoinHandle<()>>>,
}

/// The name of a shop's first app.
pub const DEFAULT_APP: &str = "default";

impl Shop {
    /// The app a token belongs to.
    pub fn app_by_token(&self, token: &str) -> Option<shop::App> {
        self.apps
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|a| a.access_token == token)
            .cloned()
    }

    /// The signing secret of an app (the shop's default secret if unknown).
    pub fn app_secret(&self, app: &str) -> String {
        self.apps
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|a| a.name == app)
            .map_or_else(|| self.api_secret.clone(), |a| a.api_secret.clone())
    }

    /// Locks the shop's state; recovers from a poisoned lock because the
    /// state stays consistent between statements.
    pub fn lock(&self) -> MutexGuard<'_, shop::ShopData> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Shared emulator state.
pub struct Inner {
    /// Configuration.
    pub config: Config,
    /// Shops by name.
    pub shops: RwLock<BTreeMap<String, Arc<Shop>>>,
    /// Client for webhook deliveries.
    pub client: reqwest::Client,
    /// Advertised base URL.
    pub base_url: String,
    /// The GraphQL schema.
    pub schema: gql::AdminSchema,
    /// Flips to `true` on shutdown so pending webhook retries stop.
    pub stopping: tokio::sync::watch::Sender<bool>,
}

/// Current time as Shopify writes it in REST and webhook payloads.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

fn shop_seed(seed: u64, name: &str) -> u64 {
    // FNV-1a: stable across Rust versions, unlike DefaultHasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 60
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Inner {
    fn shop(&self, name: &str) -> Result<Arc<Shop>, Error> {
        self.shops
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownShop(name.to_owned()))
    }

    fn create_shop(&self, spec: ShopSpec) -> Result<Arc<Shop>, Error> {
        if !valid_name(&spec.name) {
            return Err(Error::InvalidShopName(spec.name));
        }
        let mut shops = self.shops.write().unwrap_or_else(|e| e.into_inner());
        if shops.contains_key(&spec.name) {
            return Err(Error::ShopExists(spec.name));
        }
        let seed = shop_seed(self.config.seed, &spec.name);
        let plan = spec.plan.unwrap_or(self.config.plan);
        let mut data = shop::ShopData::new(
            seed,
            plan,
            spec.rest_limit.unwrap_or(self.config.rest_limit),
        );
        let domain = format!("{}.myshopify.com", spec.name);
        let id = 10_000_000 + seed % 90_000_000;
        let token = spec
            .access_token
            .unwrap_or_else(|| format!("shpat_{:032x}", u128::from(seed) << 17 | 0xa11));
        let secret = spec
            .api_secret
            .unwrap_or_else(|| format!("shpss_{:032x}", u128::from(seed) << 19 | 0x5ec));
        let seed_spec = spec.seed.unwrap_or_else(|| self.config.seed_data.clone());
        generator::seed(&mut data, &domain, &seed_spec);
        let shop = Arc::new(Shop {
            name: spec.name.clone(),
            domain,
            id,
            access_token: token.clone(),
            api_secret: secret.clone(),
            currency: "USD".into(),
            seed,
            apps: RwLock::new(vec![shop::App {
                name: DEFAULT_APP.into(),
                access_token: token.clone(),
                api_secret: secret,
            }]),
            oauth_codes: Mutex::new(std::collections::HashMap::new()),
            data: Mutex::new(data),
            traffic: Mutex::new(None),
        });
        shops.insert(spec.name, shop.clone());
        Ok(shop)
    }

    fn info(&self, shop: &Shop) -> ShopifyInfo {
        ShopifyInfo {
            url: format!("{}/shops/{}", self.base_url, shop.name),
            shop_domain: shop.domain.clone(),
            access_token: shop.access_token.clone(),
            api_secret: shop.api_secret.clone(),
            api_version: self.config.api_version.clone(),
        }
    }
}

/// The control API of a running emulator: cheap to clone and share (test
/// harnesses, the console's sandbox). [`ShopifyEmulator`] dereferences to it.
#[derive(Clone)]
pub struct Control {
    inner: Arc<Inner>,
}

/// A running emulator. Dropping it does not stop the server: call
/// [`ShopifyEmulator::shutdown`]. The control methods come from [`Control`].
pub struct ShopifyEmulator {
    control: Control,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: JoinHandle<()>,
}

/// Starts the emulator with its default shop.
pub async fn start(config: Config) -> Result<ShopifyEmulator, Error> {
    // reqwest is built without a crypto provider; install ring unless the
    // process already chose one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.listen,
        source,
    })?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(1))
        .build()?;
    let base_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| {
            // A wildcard bind is not an address clients can use.
            let mut shown = addr;
            if shown.ip().is_unspecified() {
                shown.set_ip(if shown.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            format!("http://{shown}")
        })
        .trim_end_matches('/')
        .to_owned();
    let default = ShopSpec {
        name: config.shop_name.clone(),
        access_token: Some(config.access_token.clone()),
        api_secret: Some(config.api_secret.clone()),
        plan: None,
        rest_limit: None,
        seed: None,
    };
    let inner = Arc::new(Inner {
        config,
        shops: RwLock::new(BTreeMap::new()),
        client,
        base_url,
        schema: gql::build_schema(),
        stopping: tokio::sync::watch::channel(false).0,
    });
    inner.create_shop(default)?;
    let app = http::router(inner.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app, rx));
    tracing::info!(%addr, "shopify emulator listening");
    Ok(ShopifyEmulator {
        control: Control { inner },
        addr,
        stop: Some(tx),
        server,
    })
}

/// Accepts connections until `stop` fires.
///
/// Served with hyper directly rather than `axum::serve` so that HTTP/1.1
/// header names go out in title case, as Shopify sends them: some clients
/// (the official Python library among them) look headers up case-sensitively.
async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let svc = hyper_util::service::TowerToHyperService::new(app.clone());
                conns.spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    if let Err(e) = hyper::server::conn::http1::Builder::new()
                        .title_case_headers(true)
                        .serve_connection(io, svc)
                        .await
                    {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    conns.abort_all();
}

impl std::ops::Deref for ShopifyEmulator {
    type Target = Control;
    fn deref(&self) -> &Control {
        &self.control
    }
}

impl ShopifyEmulator {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A shareable handle on the control API.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// The GraphQL schema served, as SDL (for contract tests).
    pub fn schema_sdl() -> String {
        gql::build_schema().sdl()
    }

    /// Stops the server and the traffic generators.
    pub async fn shutdown(mut self) {
        for shop in self
            .control
            .inner
            .shops
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            http::stop_traffic(shop);
        }
        self.control.inner.stopping.send_replace(true);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.server).await;
    }
}

impl Control {
    /// Connection details of the default shop.
    pub fn info(&self) -> ShopifyInfo {
        match self.inner.shop(&self.inner.config.shop_name) {
            Ok(shop) => self.inner.info(&shop),
            Err(_) => ShopifyInfo {
                url: format!(
                    "{}/shops/{}",
                    self.inner.base_url, self.inner.config.shop_name
                ),
                shop_domain: format!("{}.myshopify.com", self.inner.config.shop_name),
                access_token: self.inner.config.access_token.clone(),
                api_secret: self.inner.config.api_secret.clone(),
                api_version: self.inner.config.api_version.clone(),
            },
        }
    }

    /// Base URL of the listener (`http://127.0.0.1:PORT`).
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// Name of the default shop.
    pub fn default_shop(&self) -> &str {
        &self.inner.config.shop_name
    }

    /// Creates and seeds a shop.
    pub fn create_shop(&self, spec: ShopSpec) -> Result<ShopifyInfo, Error> {
        let shop = self.inner.create_shop(spec)?;
        Ok(self.inner.info(&shop))
    }

    /// Connection details of a shop.
    pub fn shop_info(&self, shop: &str) -> Result<ShopifyInfo, Error> {
        Ok(self.inner.info(&*self.inner.shop(shop)?))
    }

    /// Names of all shops.
    pub fn shops(&self) -> Vec<String> {
        self.inner
            .shops
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Orders of a shop, oldest first.
    pub fn orders(&self, shop: &str) -> Result<Vec<model::Order>, Error> {
        Ok(self
            .inner
            .shop(shop)?
            .lock()
            .orders
            .values()
            .cloned()
            .collect())
    }

    /// Admin API requests a shop received.
    pub fn requests(&self, shop: &str) -> Result<Vec<RequestRecord>, Error> {
        Ok(self.inner.shop(shop)?.lock().requests.clone())
    }

    /// Webhook deliveries of a shop and their outcomes.
    pub fn deliveries(&self, shop: &str) -> Result<Vec<DeliveryRecord>, Error> {
        Ok(self.inner.shop(shop)?.lock().deliveries.clone())
    }

    /// Webhook subscriptions of a shop.
    pub fn subscriptions(&self, shop: &str) -> Result<Vec<Subscription>, Error> {
        Ok(self
            .inner
            .shop(shop)?
            .lock()
            .subscriptions
            .values()
            .cloned()
            .collect())
    }

    /// Subscribes `callback_url` to a topic (`orders/create`) as if through
    /// `webhookSubscriptionCreate`; returns the subscription id.
    pub fn subscribe(&self, shop: &str, topic: &str, callback_url: &str) -> Result<u64, Error> {
        let shop = self.inner.shop(shop)?;
        Ok(http::subscribe(&self.inner, &shop, topic, callback_url))
    }

    /// Replaces a shop's injected faults.
    pub fn set_faults(&self, shop: &str, faults: Faults) -> Result<(), Error> {
        self.inner.shop(shop)?.lock().faults = faults;
        Ok(())
    }

    /// A shop's injected faults.
    pub fn faults(&self, shop: &str) -> Result<Faults, Error> {
        Ok(self.inner.shop(shop)?.lock().faults.clone())
    }

    /// Changes a shop's cost bucket and fills it.
    pub fn set_plan(&self, shop: &str, plan: Plan) -> Result<(), Error> {
        let shop = self.inner.shop(shop)?;
        let mut data = shop.lock();
        data.plan = plan;
        // Buckets refill to the new maximum on next use.
        data.cost_buckets.clear();
        Ok(())
    }

    /// Installs another app on a shop: its own token, secret, buckets and
    /// webhook subscriptions. Returns its connection details.
    pub fn add_app(&self, shop: &str, app: AppSpec) -> Result<ShopifyInfo, Error> {
        let shop = self.inner.shop(shop)?;
        let app = http::add_app(&shop, app)?;
        Ok(ShopifyInfo {
            access_token: app.access_token,
            api_secret: app.api_secret,
            ..self.inner.info(&shop)
        })
    }

    /// Clears a shop's resources, logs and faults and seeds it again.
    pub fn reset(&self, shop: &str, seed: Option<SeedSpec>) -> Result<(), Error> {
        let shop = self.inner.shop(shop)?;
        http::stop_traffic(&shop);
        http::reset(&self.inner, &shop, seed);
        Ok(())
    }

    /// Adds seed data to a shop.
    pub fn seed(&self, shop: &str, spec: &SeedSpec) -> Result<(), Error> {
        let shop = self.inner.shop(shop)?;
        let domain = shop.domain.clone();
        generator::seed(&mut shop.lock(), &domain, spec);
        Ok(())
    }

    /// Generates `n` orders now, firing `orders/create` (and
    /// `customers/create` for new buyers); returns their ids.
    pub fn generate_orders(&self, shop: &str, n: usize) -> Result<Vec<u64>, Error> {
        let shop = self.inner.shop(shop)?;
        let spec = TrafficSpec::default();
        Ok((0..n)
            .map(|_| http::generate_order(&self.inner, &shop, &spec))
            .collect())
    }

    /// Generates `n` orders now as [`ShopifyEmulator::generate_orders`] does, with the given
    /// traffic probabilities (guests, new customers, custom lines).
    pub fn generate_orders_with(
        &self,
        shop: &str,
        n: usize,
        spec: &TrafficSpec,
    ) -> Result<Vec<u64>, Error> {
        let shop = self.inner.shop(shop)?;
        Ok((0..n)
            .map(|_| http::generate_order(&self.inner, &shop, spec))
            .collect())
    }

    /// Generates a refund of a random paid order now, firing `refunds/create`.
    pub fn generate_refund(&self, shop: &str) -> Result<Option<u64>, Error> {
        let shop = self.inner.shop(shop)?;
        Ok(http::generate_refund(&self.inner, &shop))
    }

    /// Starts background traffic for a shop (replacing running traffic).
    pub fn start_traffic(&self, shop: &str, spec: TrafficSpec) -> Result<(), Error> {
        let shop = self.inner.shop(shop)?;
        http::start_traffic(&self.inner, &shop, spec);
        Ok(())
    }

    /// Stops a shop's background traffic.
    pub fn stop_traffic(&self, shop: &str) -> Result<(), Error> {
        http::stop_traffic(&*self.inner.shop(shop)?);
        Ok(())
    }
}
