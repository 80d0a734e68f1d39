//! OData client for one F&O environment: queries with server-driven paging,
//! create / patch / delete / read by key, `$batch` with atomic changesets,
//! and error classification (`Retry-After`, `AxODataWriteException`, 401/403).

use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::{DEFAULT_AUTHORITY, TokenCache, TokenSettings};
use crate::batch::{Batch, BatchResponse};
use crate::error::{D365Error, host_of, network_error, parse_retry_after};

/// `Accept` and `Content-Type` of JSON requests.
pub const JSON_MINIMAL: &str = "application/json;odata.metadata=minimal";

fn default_authority() -> String {
    DEFAULT_AUTHORITY.into()
}

fn default_timeout_secs() -> u64 {
    60
}

/// Settings of one D365 F&O connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct D365Config {
    /// `https://{env}.operations.dynamics.com`.
    pub environment_url: String,
    /// Entra tenant id.
    pub tenant_id: String,
    /// App (client) id.
    pub client_id: String,
    /// Client secret value.
    pub client_secret: SecretString,
    /// Default legal entity (`dataAreaId`), e.g. `usmf`.
    pub data_area_id: String,
    /// Entra authority.
    #[serde(default = "default_authority")]
    pub authority: String,
    /// Token endpoint override (the emulator's `token_url`).
    #[serde(default)]
    pub token_url: Option<String>,
    /// Extra CA certificate (PEM file) to trust, e.g. the emulator's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Whole-request timeout in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

/// The health check `build` returns.
pub type HealthCheck = Pin<Box<dyn Future<Output = Result<ConnectionSummary, D365Error>> + Send>>;

impl D365Config {
    /// Settings with the public authority and default timeout.
    pub fn new(
        environment_url: impl Into<String>,
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
        data_area_id: impl Into<String>,
    ) -> Self {
        D365Config {
            environment_url: environment_url.into(),
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            client_secret,
            data_area_id: data_area_id.into(),
            authority: default_authority(),
            token_url: None,
            ca_file: None,
            timeout_secs: default_timeout_secs(),
        }
    }

    /// Builds the client and a health check that gets a token and reads one row.
    pub fn build(&self) -> Result<(ODataClient, HealthCheck), D365Error> {
        let client = ODataClient::new(self)?;
        let probe = client.clone();
        let health: HealthCheck = Box::pin(async move { test_connection(&probe).await });
        Ok((client, health))
    }
}

/// Quotes a string as an OData literal (`'O''Brien'`).
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Encodes a key value or path segment, keeping OData's key punctuation.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'_' | b'~' | b'\'' | b'(' | b')' | b',' | b'=' | b'$'
            )
        {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A value in an entity key.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyValue {
    /// A string (`'…'`).
    Str(String),
    /// A number, written as is (e.g. a `LineNumber` decimal).
    Num(String),
}

/// An entity key: `(dataAreaId='usmf',SalesOrderNumber='000123')`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Key(Vec<(String, KeyValue)>);

impl Key {
    /// An empty key.
    pub fn new() -> Self {
        Key::default()
    }

    /// Adds a string property.
    pub fn str(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0.push((name.into(), KeyValue::Str(value.into())));
        self
    }

    /// Adds a numeric property.
    pub fn num(mut self, name: &str, value: impl ToString) -> Self {
        self.0.push((name.into(), KeyValue::Num(value.to_string())));
        self
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    /// `(a='x',b=1)`, unencoded.
    pub fn to_odata(&self) -> String {
        let inner = self
            .0
            .iter()
            .map(|(n, v)| match v {
                KeyValue::Str(s) => format!("{n}={}", literal(s)),
                KeyValue::Num(s) => format!("{n}={s}"),
            })
            .collect::<Vec<_>>()
            .join(",");
        format!("({inner})")
    }
}

/// Which companies a query reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Company {
    /// The connection's default `dataAreaId` (`cross-company=true` plus a filter).
    #[default]
    Default,
    /// One legal entity.
    Only(String),
    /// All companies (`cross-company=true`).
    All,
    /// No company option: the app user's default company in F&O.
    UserDefault,
}

/// A collection query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Entity set, e.g. `CustomersV3`.
    pub entity_set: String,
    /// `$filter`.
    pub filter: Option<String>,
    /// `$select`.
    pub select: Vec<String>,
    /// `$top`.
    pub top: Option<u32>,
    /// `$skip`.
    pub skip: Option<u32>,
    /// `$orderby`.
    pub order_by: Option<String>,
    /// `$expand`.
    pub expand: Option<String>,
    /// `$count=true`.
    pub count: bool,
    /// Companies.
    pub company: Company,
    /// `Prefer: odata.maxpagesize=n`.
    pub max_page_size: Option<u32>,
}

impl Query {
    /// A query over `entity_set` in the connection's default company.
    pub fn new(entity_set: impl Into<String>) -> Self {
        Query {
            entity_set: entity_set.into(),
            ..Query::default()
        }
    }
    /// Sets `$filter`.
    pub fn filter(mut self, f: impl Into<String>) -> Self {
        self.filter = Some(f.into());
        self
    }
    /// Sets `$select`.
    pub fn select<I: IntoIterator<Item = S>, S: Into<String>>(mut self, fields: I) -> Self {
        self.select = fields.into_iter().map(Into::into).collect();
        self
    }
    /// Sets `$top`.
    pub fn top(mut self, n: u32) -> Self {
        self.top = Some(n);
        self
    }
    /// Sets `$skip`.
    pub fn skip(mut self, n: u32) -> Self {
        self.skip = Some(n);
        self
    }
    /// Sets `$orderby`.
    pub fn order_by(mut self, o: impl Into<String>) -> Self {
        self.order_by = Some(o.into());
        self
    }
    /// Sets `$expand`.
    pub fn expand(mut self, e: impl Into<String>) -> Self {
        self.expand = Some(e.into());
        self
    }
    /// Asks for `@odata.count`.
    pub fn with_count(mut self) -> Self {
        self.count = true;
        self
    }
    /// Sets the company scope.
    pub fn company(mut self, c: Company) -> Self {
        self.company = c;
        self
    }
    /// Asks for pages of at most `n` rows.
    pub fn max_page_size(mut self, n: u32) -> Self {
        self.max_page_size = Some(n);
        self
    }

    /// Path and query string relative to `/data/`.
    pub fn to_relative_url(&self, default_company: &str) -> String {
        let mut params: Vec<(&str, String)> = Vec::new();
        let company = match &self.company {
            Company::Default => Some(Some(default_company.to_owned())),
            Company::Only(c) => Some(Some(c.clone())),
            Company::All => Some(None),
            Company::UserDefault => None,
        };
        let mut filter = self.filter.clone();
        if let Some(scope) = &company {
            params.push(("cross-company", "true".into()));
            if let Some(c) = scope {
                let f = format!("dataAreaId eq {}", literal(c));
                filter = Some(match filter {
                    Some(old) => format!("({old}) and {f}"),
                    None => f,
                });
            }
        }
        if let Some(f) = filter {
            params.push(("$filter", f));
        }
        if !self.select.is_empty() {
            params.push(("$select", self.select.join(",")));
        }
        if let Some(o) = &self.order_by {
            params.push(("$orderby", o.clone()));
        }
        if let Some(e) = &self.expand {
            params.push(("$expand", e.clone()));
        }
        if let Some(t) = self.top {
            params.push(("$top", t.to_string()));
        }
        if let Some(s) = self.skip {
            params.push(("$skip", s.to_string()));
        }
        if self.count {
            params.push(("$count", "true".into()));
        }
        let mut url = encode_segment(&self.entity_set);
        for (i, (k, v)) in params.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&encode(v));
        }
        url
    }
}

/// One page of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// Rows.
    pub value: Vec<T>,
    /// `@odata.nextLink`, verbatim.
    pub next_link: Option<String>,
    /// `@odata.count`, when asked for.
    pub count: Option<u64>,
}

#[derive(Deserialize)]
struct RawPage {
    #[serde(default)]
    value: Vec<Value>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
    #[serde(rename = "@odata.count", default)]
    count: Option<Value>,
}

/// What "Test connection" reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionSummary {
    /// Environment URL.
    pub environment_url: String,
    /// Company read.
    pub data_area_id: String,
    /// Entity set read.
    pub entity_set: String,
    /// Rows returned (0 or 1).
    pub rows: usize,
    /// One line for the console.
    pub message: String,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    environment_url: String,
    data_url: String,
    host: String,
    data_area_id: String,
    tokens: Arc<TokenCache>,
}

/// OData client for one environment (cheap to clone; clones share the token cache).
#[derive(Debug, Clone)]
pub struct ODataClient {
    inner: Arc<Inner>,
}

/// A response whose status was not classified as an error.
pub(crate) struct RawResponse {
    pub(crate) status: StatusCode,
    pub(crate) content_type: String,
    pub(crate) body: bytes::Bytes,
}

impl ODataClient {
    /// A client with its own token cache. Needs a rustls crypto provider
    /// installed by the process.
    pub fn new(config: &D365Config) -> Result<Self, D365Error> {
        let env = config
            .environment_url
            .trim()
            .trim_end_matches('/')
            .to_owned();
        let parsed = url::Url::parse(&env)
            .map_err(|e| D365Error::Config(format!("environment URL `{env}`: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(D365Error::Config(format!(
                "environment URL `{env}` must start with https://"
            )));
        }
        if config.data_area_id.trim().is_empty() || config.data_area_id.len() > 4 {
            return Err(D365Error::Config(format!(
                "`{}` is not a legal entity id (dataAreaId, at most 4 characters such as `usmf`)",
                config.data_area_id
            )));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("syncline/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| D365Error::Config(format!("CA file {}: {e}", path.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| D365Error::Config(format!("CA file {}: {e}", path.display())))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| D365Error::Config(format!("HTTP client: {e}")))?;
        let tokens = TokenCache::new(
            TokenSettings {
                authority: config.authority.clone(),
                tenant_id: config.tenant_id.trim().to_owned(),
                client_id: config.client_id.trim().to_owned(),
                client_secret: config.client_secret.clone(),
                scope: format!("{env}/.default"),
                token_url: config.token_url.clone(),
            },
            http.clone(),
        )?;
        Ok(Self::with_token_cache(
            http,
            &env,
            Arc::new(tokens),
            &config.data_area_id.to_ascii_lowercase(),
        ))
    }

    /// A client over an existing HTTP client and token cache.
    pub fn with_token_cache(
        http: reqwest::Client,
        environment_url: &str,
        tokens: Arc<TokenCache>,
        data_area_id: &str,
    ) -> Self {
        let env = environment_url.trim_end_matches('/').to_owned();
        let host = url::Url::parse(&env)
            .map(|u| host_of(&u))
            .unwrap_or_else(|_| env.clone());
        ODataClient {
            inner: Arc::new(Inner {
                http,
                data_url: format!("{env}/data/"),
                environment_url: env,
                host,
                data_area_id: data_area_id.to_owned(),
                tokens,
            }),
        }
    }

    /// The default legal entity.
    pub fn data_area_id(&self) -> &str {
        &self.inner.data_area_id
    }

    /// The environment URL.
    pub fn environment_url(&self) -> &str {
        &self.inner.environment_url
    }

    /// `{environment_url}/data/`.
    pub fn data_url(&self) -> &str {
        &self.inner.data_url
    }

    /// The token cache.
    pub fn tokens(&self) -> &TokenCache {
        &self.inner.tokens
    }

    /// The path of one entity, relative to `/data/`; the default company is
    /// added when the key has no `dataAreaId`.
    pub fn entity_path(&self, entity_set: &str, key: &Key) -> String {
        let key = if key.has("dataAreaId") {
            key.clone()
        } else {
            let mut k = Key::new().str("dataAreaId", self.inner.data_area_id.clone());
            k.0.extend(key.0.iter().cloned());
            k
        };
        format!(
            "{}{}",
            encode_segment(entity_set),
            encode_segment(&key.to_odata())
        )
    }

    /// Sends one request (with one retry on a 401 after refreshing the
    /// token) and classifies failures. `url` is absolute or relative to `/data/`.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<(String, Vec<u8>)>,
        prefer: Option<&str>,
    ) -> Result<RawResponse, D365Error> {
        let inner = &self.inner;
        let full = if url.starts_with("http://") || url.starts_with("https://") {
            url.to_owned()
        } else {
            format!("{}{url}", inner.data_url)
        };
        let mut refreshed = false;
        loop {
            let token = inner.tokens.token().await?;
            let mut req = inner
                .http
                .request(method.clone(), &full)
                .bearer_auth(token.secret.expose_secret())
                .header("OData-Version", "4.0")
                .header("OData-MaxVersion", "4.0")
                .header(reqwest::header::ACCEPT, JSON_MINIMAL);
            if let Some(p) = prefer {
                req = req.header("Prefer", p);
            }
            if let Some((ct, bytes)) = &body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, ct.as_str())
                    .body(bytes.clone());
            }
            let resp = req
                .send()
                .await
                .map_err(|e| network_error(&e, &inner.host))?;
            let status = resp.status();
            let header = |name: reqwest::header::HeaderName| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let retry_after = header(reqwest::header::RETRY_AFTER);
            let content_type = header(reqwest::header::CONTENT_TYPE).unwrap_or_default();
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| network_error(&e, &inner.host))?;
            tracing::debug!(
                method = %method,
                entity = %url.split(['(', '?']).next().unwrap_or_default(),
                status = status.as_u16(),
                "d365 odata"
            );
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                // The cached token may have been revoked or expired early.
                refreshed = true;
                inner.tokens.invalidate().await;
                continue;
            }
            if status.is_success() {
                return Ok(RawResponse {
                    status,
                    content_type,
                    body: bytes,
                });
            }
            return Err(classify(status, retry_after.as_deref(), &bytes, url));
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        prefer: Option<&str>,
    ) -> Result<Option<T>, D365Error> {
        let body = match body {
            Some(v) => Some((
                JSON_MINIMAL.to_owned(),
                serde_json::to_vec(v).map_err(|e| D365Error::Invalid(e.to_string()))?,
            )),
            None => None,
        };
        let resp = self.send(method, url, body, prefer).await?;
        if resp.body.is_empty() || resp.status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        serde_json::from_slice(&resp.body)
            .map(Some)
            .map_err(|e| D365Error::Invalid(format!("{url}: {e}")))
    }

    /// The first page of a query.
    pub async fn get_page(&self, query: &Query) -> Result<Page<Value>, D365Error> {
        let url = query.to_relative_url(&self.inner.data_area_id);
        let prefer = query
            .max_page_size
            .map(|n| format!("odata.maxpagesize={n}"));
        self.page(&url, prefer.as_deref()).await
    }

    /// The page at `next_link` (followed verbatim).
    pub async fn next_page(&self, next_link: &str) -> Result<Page<Value>, D365Error> {
        self.page(next_link, None).await
    }

    async fn page(&self, url: &str, prefer: Option<&str>) -> Result<Page<Value>, D365Error> {
        let raw: RawPage = self
            .json(Method::GET, url, None, prefer)
            .await?
            .ok_or_else(|| D365Error::Invalid(format!("{url}: empty answer")))?;
        Ok(Page {
            value: raw.value,
            next_link: raw.next_link,
            count: raw.count.and_then(|c| match c {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }),
        })
    }

    /// Every row of a query, following `@odata.nextLink` to the end.
    pub async fn query<T: DeserializeOwned>(&self, query: &Query) -> Result<Vec<T>, D365Error> {
        let mut page = self.get_page(query).await?;
        let mut out = Vec::new();
        loop {
            for row in page.value {
                out.push(
                    serde_json::from_value(row).map_err(|e| {
                        D365Error::Invalid(format!("{} row: {e}", query.entity_set))
                    })?,
                );
            }
            match page.next_link {
                Some(link) => page = self.next_page(&link).await?,
                None => return Ok(out),
            }
        }
    }

    /// One entity by key; `NotFound` when it does not exist.
    pub async fn get_by_key<T: DeserializeOwned>(
        &self,
        entity_set: &str,
        key: &Key,
    ) -> Result<T, D365Error> {
        let url = format!("{}?cross-company=true", self.entity_path(entity_set, key));
        self.json(Method::GET, &url, None, None)
            .await?
            .ok_or_else(|| D365Error::Invalid(format!("{entity_set}: empty answer")))
    }

    /// Creates an entity (POST → 201) and answers it as D365 stored it
    /// (server-assigned numbers filled in). The default `dataAreaId` is added
    /// when the body has none.
    pub async fn create<B: Serialize, T: DeserializeOwned>(
        &self,
        entity_set: &str,
        body: &B,
    ) -> Result<T, D365Error> {
        let body = self.with_company(body)?;
        self.json(Method::POST, &encode_segment(entity_set), Some(&body), None)
            .await?
            .ok_or_else(|| D365Error::Invalid(format!("{entity_set}: create answered no entity")))
    }

    /// Updates the given properties of an entity (PATCH → 204).
    pub async fn patch<B: Serialize>(
        &self,
        entity_set: &str,
        key: &Key,
        body: &B,
    ) -> Result<(), D365Error> {
        let body = serde_json::to_value(body).map_err(|e| D365Error::Invalid(e.to_string()))?;
        let url = format!("{}?cross-company=true", self.entity_path(entity_set, key));
        self.json::<Value>(Method::PATCH, &url, Some(&body), None)
            .await
            .map(|_| ())
    }

    /// Deletes an entity (204).
    pub async fn delete(&self, entity_set: &str, key: &Key) -> Result<(), D365Error> {
        let url = format!("{}?cross-company=true", self.entity_path(entity_set, key));
        self.json::<Value>(Method::DELETE, &url, None, None)
            .await
            .map(|_| ())
    }

    /// Sends a `$batch` and parses the per-operation answers. A 429 on the
    /// whole batch is `Throttled`; 429s inside show up per operation.
    pub async fn batch(&self, batch: &Batch) -> Result<BatchResponse, D365Error> {
        let (content_type, body) = batch.encode(self);
        let resp = self
            .send(Method::POST, "$batch", Some((content_type, body)), None)
            .await?;
        BatchResponse::parse(&resp.content_type, &resp.body)
    }

    pub(crate) fn with_company<B: Serialize>(&self, body: &B) -> Result<Value, D365Error> {
        let mut body = serde_json::to_value(body).map_err(|e| D365Error::Invalid(e.to_string()))?;
        if let Value::Object(m) = &mut body
            && !m.contains_key("dataAreaId")
        {
            m.insert(
                "dataAreaId".into(),
                Value::String(self.inner.data_area_id.clone()),
            );
        }
        Ok(body)
    }
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error: ErrorDetail,
}

#[derive(Deserialize, Default)]
struct ErrorDetail {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    innererror: Option<InnerError>,
}

#[derive(Deserialize, Default)]
struct InnerError {
    #[serde(default)]
    message: String,
    #[serde(default, rename = "type")]
    ty: String,
}

/// Classifies a failed OData answer (also used for `$batch` parts).
pub(crate) fn classify(
    status: StatusCode,
    retry_after: Option<&str>,
    body: &[u8],
    what: &str,
) -> D365Error {
    let err: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let detail = err.error;
    let inner = detail.innererror.unwrap_or_default();
    let what = what.split('?').next().unwrap_or(what);
    let code = format!("HTTP {}", status.as_u16());
    match status.as_u16() {
        429 => D365Error::Throttled {
            retry_after: retry_after
                .and_then(parse_retry_after)
                .unwrap_or(Duration::from_secs(5)),
        },
        401 => D365Error::Unauthorized {
            message: "F&O refused a valid Entra token: register the app in F&O (System administration › Setup › Microsoft Entra ID applications) and link it to an enabled user".into(),
            code,
        },
        403 => D365Error::Unauthorized {
            message: "F&O denied access: the app may not be registered in F&O, or its user lacks the security roles for this entity".into(),
            code,
        },
        404 => D365Error::NotFound(what.to_owned()),
        _ if inner.ty.contains("AxODataWriteException") => D365Error::Permanent {
            message: infolog(&inner.message),
            code: Some("AxODataWriteException".into()),
        },
        s if s >= 500 => D365Error::Transient {
            message: format!("D365 answered {status} for {what}"),
            code,
        },
        _ => {
            let msg = if !inner.message.is_empty() {
                inner.message
            } else if !detail.message.is_empty() {
                detail.message
            } else {
                format!("D365 answered {status} for {what}")
            };
            D365Error::Permanent {
                message: msg.chars().take(1000).collect(),
                code: Some(match detail.code.filter(|c| !c.is_empty()) {
                    Some(c) => format!("{code} {c}"),
                    None => code,
                }),
            }
        }
    }
}

/// An `AxODataWriteException` message (table and Infolog), bounded.
fn infolog(message: &str) -> String {
    message.trim().chars().take(2000).collect()
}

/// "Test connection": get a token, then read one row of `CustomerGroups`.
pub async fn test_connection(client: &ODataClient) -> Result<ConnectionSummary, D365Error> {
    client.tokens().token().await?;
    let entity_set = "CustomerGroups";
    let page = client
        .get_page(&Query::new(entity_set).select(["CustomerGroupId"]).top(1))
        .await?;
    let rows = page.value.len();
    let message = format!(
        "Signed in to Entra ID and read {entity_set} in company {} ({rows} row{})",
        client.data_area_id(),
        if rows == 1 { "" } else { "s" }
    );
    Ok(ConnectionSummary {
        environment_url: client.environment_url().to_owned(),
        data_area_id: client.data_area_id().to_owned(),
        entity_set: entity_set.into(),
        rows,
        message,
    })
}
