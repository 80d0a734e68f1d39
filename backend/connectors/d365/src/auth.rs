//! Entra ID client-credentials token cache.
//!
//! One cache per connection: the token is fetched once, shared by every
//! caller, and refreshed ahead of its expiry (single-flight: concurrent
//! callers wait for the one fetch in progress). Entra's `AADSTS…` errors are
//! turned into messages that say what to fix.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::error::{D365Error, host_of, network_error, parse_retry_after};

/// Entra ID's public authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// Refresh this long before expiry (less for short-lived tokens).
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Where and how to ask for tokens.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// Authority, e.g. `https://login.microsoftonline.com`.
    pub authority: String,
    /// Entra tenant id (GUID or domain).
    pub tenant_id: String,
    /// App (client) id.
    pub client_id: String,
    /// Client secret value.
    pub client_secret: SecretString,
    /// `scope`: `{environment_url}/.default`.
    pub scope: String,
    /// Full token endpoint, overriding `{authority}/{tenant}/oauth2/v2.0/token`.
    pub token_url: Option<String>,
}

/// A bearer token and when it expires.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The bearer value.
    pub secret: SecretString,
    /// When Entra says it expires.
    pub expires_at: Instant,
}

#[derive(Debug)]
struct Cached {
    token: AccessToken,
    refresh_at: Instant,
}

#[derive(Debug, Default)]
struct State {
    cached: Option<Cached>,
    /// The last failed fetch: callers that were waiting for it get its
    /// error instead of each asking Entra again.
    failure: Option<(Instant, D365Error)>,
}

/// Client-credentials token cache for one app registration and environment.
#[derive(Debug)]
pub struct TokenCache {
    http: reqwest::Client,
    endpoint: url::Url,
    tenant_id: String,
    client_id: String,
    client_secret: SecretString,
    scope: String,
    state: Mutex<State>,
    fetches: AtomicU64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct AadError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u64>,
}

impl TokenCache {
    /// A cache using `http` (shared with the OData client).
    pub fn new(settings: TokenSettings, http: reqwest::Client) -> Result<Self, D365Error> {
        let raw = match &settings.token_url {
            Some(u) => u.clone(),
            None => format!(
                "{}/{}/oauth2/v2.0/token",
                settings.authority.trim_end_matches('/'),
                settings.tenant_id
            ),
        };
        let endpoint = url::Url::parse(&raw)
            .map_err(|e| D365Error::Config(format!("token endpoint `{raw}`: {e}")))?;
        if settings.client_id.trim().is_empty() || settings.tenant_id.trim().is_empty() {
            return Err(D365Error::Config(
                "the tenant id and the client id must be filled in".into(),
            ));
        }
        Ok(TokenCache {
            http,
            endpoint,
            tenant_id: settings.tenant_id,
            client_id: settings.client_id,
            client_secret: settings.client_secret,
            scope: settings.scope,
            state: Mutex::new(State::default()),
            fetches: AtomicU64::new(0),
        })
    }

    /// A valid token: the cached one, or a fresh one when it is due for refresh.
    pub async fn token(&self) -> Result<AccessToken, D365Error> {
        let asked = Instant::now();
        let mut state = self.state.lock().await;
        if let Some(c) = state.cached.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        if let Some((at, err)) = &state.failure
            && *at >= asked
        {
            return Err(err.clone());
        }
        // The lock is held while fetching: concurrent callers wait for this
        // fetch instead of starting their own.
        match self.fetch().await {
            Ok((token, lifetime)) => {
                let margin = REFRESH_MARGIN.min(lifetime / 5);
                let refresh_at = token
                    .expires_at
                    .checked_sub(margin)
                    .unwrap_or(token.expires_at);
                state.cached = Some(Cached {
                    token: token.clone(),
                    refresh_at,
                });
                state.failure = None;
                Ok(token)
            }
            Err(err) => {
                state.failure = Some((Instant::now(), err.clone()));
                Err(err)
            }
        }
    }

    /// Drops the cached token (after a 401 on a token that looked valid).
    pub async fn invalidate(&self) {
        self.state.lock().await.cached = None;
    }

    /// How many tokens this cache fetched from Entra so far.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The token endpoint in use.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    async fn fetch(&self) -> Result<(AccessToken, Duration), D365Error> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        TOKEN_FETCHES.fetch_add(1, Ordering::Relaxed);
        let host = host_of(&self.endpoint);
        let form = [
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
            ("grant_type", "client_credentials"),
            ("scope", self.scope.as_str()),
        ];
        let started = Instant::now();
        let resp = self
            .http
            .post(self.endpoint.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| network_error(&e, &host))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = resp.bytes().await.map_err(|e| network_error(&e, &host))?;
        tracing::debug!(
            client_id = %self.client_id,
            status = status.as_u16(),
            "entra token request"
        );
        if status.is_success() {
            let t: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
                D365Error::Invalid(format!("the token endpoint answered unreadable JSON: {e}"))
            })?;
            // v2 answers a number, v1 a string.
            let secs = match &t.expires_in {
                Some(serde_json::Value::Number(n)) => n.as_f64(),
                Some(serde_json::Value::String(s)) => s.parse().ok(),
                _ => None,
            }
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(3599.0);
            let lifetime = Duration::from_secs_f64(secs);
            return Ok((
                AccessToken {
                    secret: SecretString::from(t.access_token),
                    expires_at: started + lifetime,
                },
                lifetime,
            ));
        }
        if status.as_u16() == 429 {
            return Err(D365Error::Throttled {
                retry_after: retry_after.unwrap_or(Duration::from_secs(5)),
            });
        }
        if status.is_server_error() {
            return Err(D365Error::Transient {
                message: format!("the Entra ID token endpoint answered {status}"),
                code: format!("HTTP {}", status.as_u16()),
            });
        }
        let err: AadError = serde_json::from_slice(&body).unwrap_or_default();
        Err(classify_aad(&err, status, &self.tenant_id, &self.client_id))
    }
}

/// `AADSTS` number from `error_codes` or the description.
fn aadsts_code(err: &AadError) -> Option<u64> {
    err.error_codes.first().copied().or_else(|| {
        let rest = err.error_description.split("AADSTS").nth(1)?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

fn classify_aad(
    err: &AadError,
    status: reqwest::StatusCode,
    tenant: &str,
    client_id: &str,
) -> D365Error {
    let code = aadsts_code(err);
    let code_text = code
        .map(|c| format!("AADSTS{c}"))
        .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
    let message = match code {
        Some(7_000_215) => "the client secret is wrong: paste the secret's Value (not its Secret ID) from the app registration's Certificates & secrets page".to_owned(),
        Some(7_000_222) => "the client secret has expired: create a new secret in the app registration and paste its value here".to_owned(),
        Some(7_000_218) => "no client secret was sent: fill in the client secret".to_owned(),
        Some(700_016) => format!("no application with client id `{client_id}` exists in tenant `{tenant}`: check the client id and that the app is registered in this tenant"),
        Some(90_002) => format!("the Entra tenant `{tenant}` was not found: check the tenant id (a GUID or `contoso.onmicrosoft.com`)"),
        Some(70_011) => "the requested scope is invalid: check the environment URL (it must be the F&O address, e.g. https://contoso.operations.dynamics.com)".to_owned(),
        Some(500_011) => "the environment URL is not a resource known to this tenant: check the environment URL".to_owned(),
        _ if err.error == "invalid_client" => "the client id or secret was rejected: check both".to_owned(),
        _ => {
            // Keep Entra's first sentence, without trace and correlation ids.
            let first = err
                .error_description
                .split(" Trace ID:")
                .next()
                .unwrap_or_default()
                .trim();
            if first.is_empty() {
                format!("the token endpoint refused the request ({})", err.error)
            } else {
                first.chars().take(300).collect()
            }
        }
    };
    D365Error::Unauthorized {
        message,
        code: code_text,
    }
}

/// Tokens fetched from Entra by every cache of this process (a `/metrics` counter).
static TOKEN_FETCHES: AtomicU64 = AtomicU64::new(0);

/// How many tokens every cache of this process fetched from Entra so far.
pub fn token_fetches_total() -> u64 {
    TOKEN_FETCHES.load(Ordering::Relaxed)
}
