//! Admin GraphQL API client: configuration, cost-based throttling, error
//! classification and the typed operations the platform needs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), syncline_shopify::client::ClientError> {
//! use syncline_shopify::client::{AdminConfig, test_connection};
//! let config = AdminConfig::new("acme.myshopify.com", "shpat_…".into());
//! let (client, health) = config.build()?;
//! let shop = health.await?; // or test_connection(&client).await?
//! # Ok(()) }
//! ```

mod cost;
mod error;
mod ops;
mod stats;

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use cost::{QueryCost, ThrottleStatus};
pub use error::{ClientError, UserError};
pub use ops::{DOCUMENTS, ShopInfo, WebhookSubscription, topic_enum};
pub use stats::{CallStats, call_stats};

/// The Admin API version used when the configuration names none.
pub const DEFAULT_API_VERSION: &str = "2025-01";

fn default_api_version() -> String {
    DEFAULT_API_VERSION.into()
}

fn default_timeout_secs() -> u64 {
    30
}

/// Settings of one Shopify Admin API connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// `{name}.myshopify.com`.
    pub shop_domain: String,
    /// Where to send requests instead of `https://{shop_domain}` (the
    /// emulator's `http://127.0.0.1:PORT/shops/{name}`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Admin API access token (`X-Shopify-Access-Token`).
    pub access_token: SecretString,
    /// API version, e.g. `2025-01`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Whole-request timeout in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

/// The health check `build` returns: `shop { name currencyCode myshopifyDomain }`.
pub type HealthCheck = Pin<Box<dyn Future<Output = Result<ShopInfo, ClientError>> + Send>>;

impl AdminConfig {
    /// Settings with the default API version, timeout and base URL.
    pub fn new(shop_domain: impl Into<String>, access_token: SecretString) -> Self {
        AdminConfig {
            shop_domain: shop_domain.into(),
            base_url: None,
            access_token,
            api_version: default_api_version(),
            timeout_secs: default_timeout_secs(),
        }
    }

    /// Builds the client and a health check that really talks to the shop.
    pub fn build(&self) -> Result<(AdminClient, HealthCheck), ClientError> {
        let client = AdminClient::new(self)?;
        let probe = client.clone();
        let health: HealthCheck = Box::pin(async move { test_connection(&probe).await });
        Ok((client, health))
    }
}

/// Checks `name.myshopify.com`: lowercase letters, digits and hyphens.
pub fn validate_shop_domain(domain: &str) -> Result<(), ClientError> {
    let bad = || {
        ClientError::Config(format!(
            "`{domain}` is not a shop domain: expected `your-store.myshopify.com`"
        ))
    };
    let name = domain.strip_suffix(".myshopify.com").ok_or_else(bad)?;
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok { Ok(()) } else { Err(bad()) }
}

fn validate_version(v: &str) -> Result<(), ClientError> {
    let b = v.as_bytes();
    let ok = v == "unstable"
        || (b.len() == 7
            && b[4] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || c.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(ClientError::Config(format!(
            "`{v}` is not an API version: expected `YYYY-MM`, e.g. `{DEFAULT_API_VERSION}`"
        )))
    }
}

/// One GraphQL request with the cost the bucket must hold for it.
#[derive(Debug, Clone)]
pub struct GraphqlRequest {
    /// Operation name (logs only).
    pub name: &'static str,
    /// The document.
    pub query: Cow<'static, str>,
    /// Variables (`null` for none).
    pub variables: Value,
    /// Requested cost estimate (what Shopify will compute from the document).
    pub cost: f64,
}

/// A successful GraphQL answer.
#[derive(Debug, Clone)]
pub struct GraphqlResponse<T> {
    /// `data`.
    pub data: T,
    /// `extensions.cost`, when present.
    pub cost: Option<QueryCost>,
}

#[derive(Debug, Deserialize)]
struct RawResponse {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    errors: Option<Value>,
    #[serde(default)]
    extensions: Option<RawExtensions>,
}

#[derive(Debug, Deserialize)]
struct RawExtensions {
    #[serde(default)]
    cost: Option<QueryCost>,
}

#[derive(Debug, Deserialize)]
struct RawError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    extensions: Option<RawErrorExtensions>,
}

#[derive(Debug, Deserialize)]
struct RawErrorExtensions {
    #[serde(default)]
    code: Option<String>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    endpoint: String,
    host: String,
    shop_domain: String,
    api_version: String,
    token: SecretString,
    bucket: cost::CostBucket,
}

/// Admin GraphQL client for one shop (cheap to clone; clones share the cost
/// bucket estimate).
#[derive(Debug, Clone)]
pub struct AdminClient {
    inner: Arc<Inner>,
}

impl AdminClient {
    /// A client for the configured shop. Needs a rustls crypto provider
    /// installed by the process (`rustls::crypto::ring::default_provider().install_default()`).
    pub fn new(config: &AdminConfig) -> Result<Self, ClientError> {
        validate_shop_domain(&config.shop_domain)?;
        validate_version(&config.api_version)?;
        let base = match &config.base_url {
            Some(b) => b.trim_end_matches('/').to_owned(),
            None => format!("https://{}", config.shop_domain),
        };
        let parsed = url::Url::parse(&base)
            .map_err(|e| ClientError::Config(format!("base URL `{base}`: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ClientError::Config(format!(
                "base URL `{base}` must be http or https"
            )));
        }
        let host = match (parsed.host_str(), parsed.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => {
                return Err(ClientError::Config(format!(
                    "base URL `{base}` has no host"
                )));
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("syncline/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Config(format!("HTTP client: {e}")))?;
        Ok(AdminClient {
            inner: Arc::new(Inner {
                http,
                endpoint: format!("{base}/admin/api/{}/graphql.json", config.api_version),
                host,
                shop_domain: config.shop_domain.clone(),
                api_version: config.api_version.clone(),
                token: config.access_token.clone(),
                bucket: cost::CostBucket::new(),
            }),
        })
    }

    /// The shop's `*.myshopify.com` domain.
    pub fn shop_domain(&self) -> &str {
        &self.inner.shop_domain
    }

    /// The API version in use.
    pub fn api_version(&self) -> &str {
        &self.inner.api_version
    }

    /// The GraphQL endpoint URL.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// The client's current estimate of the cost bucket, once a response has been seen.
    pub async fn cost_estimate(&self) -> Option<ThrottleStatus> {
        self.inner.bucket.snapshot().await
    }

    /// Sends one GraphQL request, first waiting until its cost fits in the
    /// bucket, and classifies the answer.
    pub async fn graphql<T: DeserializeOwned>(
        &self,
        req: &GraphqlRequest,
    ) -> Result<GraphqlResponse<T>, ClientError> {
        let mut charged = None;
        let result = self.graphql_once(req, &mut charged).await;
        // A request refused before it was sent (cost above the bucket) is not a call.
        let sent = !matches!(&result, Err(ClientError::Invalid { code: Some(c), .. }) if c == "MAX_COST_EXCEEDED");
        if sent {
            let outcome = match &result {
                Ok(_) => Ok(()),
                Err(error) => Err(matches!(error, ClientError::Throttled { .. })),
            };
            stats::record(outcome, charged);
        }
        result
    }

    async fn graphql_once<T: DeserializeOwned>(
        &self,
        req: &GraphqlRequest,
        charged: &mut Option<f64>,
    ) -> Result<GraphqlResponse<T>, ClientError> {
        let inner = &self.inner;
        let waited = inner
            .bucket
            .acquire(req.cost)
            .await
            .map_err(|max| ClientError::Invalid {
                message: format!(
                    "operation {} needs {} cost points but the shop's bucket holds at most {max}",
                    req.name, req.cost
                ),
                code: Some("MAX_COST_EXCEEDED".into()),
            })?;
        let body = serde_json::json!({ "query": req.query, "variables": req.variables });
        let resp = inner
            .http
            .post(&inner.endpoint)
            .header("X-Shopify-Access-Token", inner.token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body)
            .send()
            .await
            .map_err(|e| error::network_error(&e, &inner.host))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| error::network_error(&e, &inner.host))?;
        tracing::debug!(
            shop = %inner.shop_domain,
            operation = req.name,
            status = status.as_u16(),
            waited_ms = waited.as_millis() as u64,
            "shopify graphql"
        );
        if !status.is_success() {
            return Err(self.classify_status(status, retry_after, &bytes));
        }
        let raw: RawResponse =
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Invalid {
                message: format!("the answer is not GraphQL JSON: {e}"),
                code: None,
            })?;
        let cost = raw.extensions.and_then(|e| e.cost);
        if let Some(c) = &cost {
            inner.bucket.observe(&c.throttle_status).await;
            *charged = c.actual_query_cost;
        }
        if let Some(errors) = raw.errors.filter(|e| !e.is_null()) {
            return Err(classify_graphql_errors(errors, cost.as_ref(), req.cost));
        }
        let data = raw.data.unwrap_or(Value::Null);
        let data = serde_json::from_value(data).map_err(|e| ClientError::Invalid {
            message: format!("unexpected answer to {}: {e}", req.name),
            code: None,
        })?;
        Ok(GraphqlResponse { data, cost })
    }

    fn classify_status(
        &self,
        status: StatusCode,
        retry_after: Option<Duration>,
        body: &[u8],
    ) -> ClientError {
        let upstream = upstream_message(body);
        let code = format!("HTTP {}", status.as_u16());
        match status.as_u16() {
            401 => ClientError::Unauthorized {
                message: format!(
                    "the access token is invalid or was revoked; reinstall the app or paste a new Admin API token{}",
                    upstream.map(|m| format!(" (Shopify said: {m})")).unwrap_or_default()
                ),
                code,
            },
            403 => ClientError::Unauthorized {
                message: format!(
                    "the token lacks a permission this call needs; grant the app the missing Admin API scopes{}",
                    upstream.map(|m| format!(" (Shopify said: {m})")).unwrap_or_default()
                ),
                code,
            },
            402 | 423 => ClientError::Unauthorized {
                message: "the shop is frozen or locked (unpaid or suspended); the merchant must reactivate it".into(),
                code,
            },
            404 => ClientError::NotFound(format!(
                "no Admin API at {} (check the shop domain and API version {})",
                self.inner.endpoint, self.inner.api_version
            )),
            429 => ClientError::Throttled {
                retry_after: retry_after.unwrap_or(Duration::from_secs(2)),
                code: Some(code),
            },
            s if s >= 500 => ClientError::Transient {
                message: format!("Shopify answered {status}"),
                code,
            },
            _ => ClientError::Invalid {
                message: format!(
                    "Shopify answered {status}{}",
                    upstream.map(|m| format!(": {m}")).unwrap_or_default()
                ),
                code: Some(code),
            },
        }
    }
}

/// A short upstream message from an error body (`{"errors": "..."}` or a list).
fn upstream_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let msg = match v.get("errors")? {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .filter_map(|e| e.get("message").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    };
    let msg: String = msg.chars().take(300).collect();
    (!msg.is_empty()).then_some(msg)
}

fn classify_graphql_errors(errors: Value, cost: Option<&QueryCost>, requested: f64) -> ClientError {
    let list: Vec<RawError> = match errors {
        Value::Array(_) => serde_json::from_value(errors).unwrap_or_default(),
        Value::String(s) => vec![RawError {
            message: s,
            extensions: None,
        }],
        other => vec![RawError {
            message: other.to_string(),
            extensions: None,
        }],
    };
    let code_of = |e: &RawError| e.extensions.as_ref().and_then(|x| x.code.clone());
    if list
        .iter()
        .any(|e| code_of(e).as_deref() == Some("THROTTLED"))
    {
        let retry_after = cost
            .map(|c| {
                let need = c.requested_query_cost.unwrap_or(requested);
                c.wait_for(need)
            })
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_millis(100));
        return ClientError::Throttled {
            retry_after,
            code: Some("THROTTLED".into()),
        };
    }
    if let Some(e) = list
        .iter()
        .find(|e| code_of(e).as_deref() == Some("ACCESS_DENIED"))
    {
        return ClientError::Unauthorized {
            message: format!(
                "the app is missing an access scope for this call; grant it and reinstall ({})",
                e.message
            ),
            code: "ACCESS_DENIED".into(),
        };
    }
    let code = list.first().and_then(code_of);
    let message = if list.is_empty() {
        "unspecified GraphQL error".to_owned()
    } else {
        list.iter()
            .map(|e| e.message.trim())
            .collect::<Vec<_>>()
            .join("; ")
    };
    ClientError::Invalid { message, code }
}

/// The console's "Test connection": `shop { name currencyCode myshopifyDomain }`.
pub async fn test_connection(client: &AdminClient) -> Result<ShopInfo, ClientError> {
    client.shop_info().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(available: f64) -> QueryCost {
        QueryCost {
            requested_query_cost: Some(52.0),
            actual_query_cost: None,
            throttle_status: ThrottleStatus {
                maximum_available: 1000.0,
                currently_available: available,
                restore_rate: 50.0,
            },
        }
    }

    #[test]
    fn throttled_wait_comes_from_the_restore_rate() {
        let errors =
            serde_json::json!([{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]);
        let err = classify_graphql_errors(errors, Some(&cost(2.0)), 10.0);
        // 50 points missing at 50 points/s: one second (plus a little slack).
        let wait = err.retry_after().unwrap();
        assert!(
            wait >= Duration::from_secs(1) && wait < Duration::from_millis(1200),
            "{wait:?}"
        );
        assert_eq!(err.code(), Some("THROTTLED"));
    }

    #[test]
    fn access_denied_is_unauthorized_and_other_errors_invalid() {
        let errors = serde_json::json!([{"message": "Access denied for orders field. Required access: `read_orders` access scope.", "extensions": {"code": "ACCESS_DENIED"}}]);
        let err = classify_graphql_errors(errors, None, 1.0);
        assert!(err.is_auth());
        assert_eq!(err.code(), Some("ACCESS_DENIED"));
        assert!(err.to_string().contains("read_orders"), "{err}");

        let errors = serde_json::json!([{"message": "Field 'nope' doesn't exist on type 'Shop'", "extensions": {"code": "undefinedField"}}]);
        let err = classify_graphql_errors(errors, None, 1.0);
        assert_eq!(
            err,
            ClientError::Invalid {
                message: "Field 'nope' doesn't exist on type 'Shop'".into(),
                code: Some("undefinedField".into()),
            }
        );
        assert!(!err.is_retryable());
    }
}
