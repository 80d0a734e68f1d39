//! Entra ID (Azure AD) client-credentials token endpoint, v1 and v2, with the
//! AADSTS error shapes real clients parse, plus the OpenID discovery documents
//! msal fetches before asking for a token.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use serde_json::{Value, json};

use crate::Shared;
use crate::lock;

/// An app registration known to the emulated tenant.
#[derive(Debug, Clone, Serialize)]
pub struct App {
    /// Application (client) id.
    pub client_id: String,
    /// Current client secret value.
    #[serde(skip)]
    pub secret: String,
    /// Whether the secret has expired (AADSTS7000222).
    pub secret_expired: bool,
    /// Whether the app is registered inside F&O (else OData answers 401).
    pub registered_in_fo: bool,
}

/// An issued access token.
#[derive(Debug, Clone)]
pub struct Token {
    /// App the token was issued to.
    pub client_id: String,
    /// Expiry instant.
    pub expires_at: DateTime<Utc>,
    /// Revoked through the control plane.
    pub revoked: bool,
}

/// Tenant, apps and issued tokens.
#[derive(Debug)]
pub struct AuthState {
    /// Directory (tenant) id.
    pub tenant_id: String,
    /// App registrations.
    pub apps: Vec<App>,
    /// Issued tokens by value.
    pub tokens: HashMap<String, Token>,
    /// Lifetime of new tokens.
    pub lifetime: Duration,
}

/// Why an OData request's bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No or malformed `Authorization` header.
    Missing,
    /// Unknown token.
    Invalid,
    /// Token past its expiry.
    Expired,
    /// Token revoked.
    Revoked,
    /// App not registered in F&O.
    NotRegistered,
}

impl AuthState {
    /// Checks a bearer token; returns the client id on success.
    pub fn check(&self, headers: &HeaderMap) -> Result<String, Denied> {
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(Denied::Missing)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(Denied::Missing)?
            .trim();
        let t = self.tokens.get(token).ok_or(Denied::Invalid)?;
        if t.revoked {
            return Err(Denied::Revoked);
        }
        if t.expires_at <= Utc::now() {
            return Err(Denied::Expired);
        }
        let app = self
            .apps
            .iter()
            .find(|a| a.client_id == t.client_id)
            .ok_or(Denied::Invalid)?;
        if !app.registered_in_fo {
            return Err(Denied::NotRegistered);
        }
        Ok(t.client_id.clone())
    }
}

fn timestamp() -> String {
    Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string()
}

fn aad_error(
    status: StatusCode,
    error: &str,
    code: u32,
    text: &str,
    correlation_id: &str,
) -> Response {
    let trace_id = uuid::Uuid::new_v4().to_string();
    let ts = timestamp();
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {text} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {ts}"),
        "error_codes": [code],
        "timestamp": ts,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store, no-cache"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(body),
    )
        .into_response()
}

/// AADSTS90002. The token endpoint calls it `invalid_request`, the discovery
/// document `invalid_tenant`.
fn tenant_not_found(tenant: &str, correlation: &str, error: &str) -> Response {
    aad_error(
        StatusCode::BAD_REQUEST,
        error,
        90002,
        &format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
        ),
        correlation,
    )
}

fn known_tenant(state: &AuthState, tenant: &str) -> bool {
    tenant.eq_ignore_ascii_case(&state.tenant_id)
        || tenant.eq_ignore_ascii_case("syncline-sim.onmicrosoft.com")
}

/// Whether `resource` names this F&O environment.
fn resource_ok(shared: &Shared, resource: &str) -> bool {
    let r = resource.trim_end_matches('/').to_ascii_lowercase();
    let base = shared.base_url.trim_end_matches('/').to_ascii_lowercase();
    r == base
        || r == base.replace("127.0.0.1", "localhost")
        || r == "00000015-0000-0000-c000-000000000000"
        || (r.starts_with("https://") && r.ends_with(".dynamics.com"))
}

/// `POST /{tenant}/oauth2/v2.0/token`
pub async fn token_v2(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    issue(&shared, &tenant, &headers, &body, true)
}

/// `POST /{tenant}/oauth2/token` (v1: `resource=` instead of `scope=`)
pub async fn token_v1(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    issue(&shared, &tenant, &headers, &body, false)
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let raw = STANDARD.decode(v.strip_prefix("Basic ")?.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

fn issue(shared: &Shared, tenant: &str, headers: &HeaderMap, body: &[u8], v2: bool) -> Response {
    let correlation = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let mut auth = lock(&shared.auth);
    if !known_tenant(&auth, tenant) {
        return tenant_not_found(tenant, &correlation, "invalid_request");
    }
    let grant = form.get("grant_type").map(String::as_str).unwrap_or("");
    if grant.is_empty() {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
            &correlation,
        );
    }
    if grant != "client_credentials" {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type. This emulator supports client_credentials only.",
            &correlation,
        );
    }
    let basic = basic_credentials(headers);
    let client_id = form
        .get("client_id")
        .cloned()
        .or_else(|| basic.as_ref().map(|b| b.0.clone()))
        .unwrap_or_default();
    if client_id.is_empty() {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
            &correlation,
        );
    }
    let Some(app) = auth.apps.iter().find(|a| a.client_id == client_id).cloned() else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                auth.tenant_id
            ),
            &correlation,
        );
    };
    let secret = form
        .get("client_secret")
        .cloned()
        .or_else(|| basic.map(|b| b.1));
    let Some(secret) = secret else {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            &correlation,
        );
    };
    if app.secret_expired {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000222,
            &format!(
                "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."
            ),
            &correlation,
        );
    }
    if secret != app.secret {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
            &correlation,
        );
    }
    let resource = if v2 {
        let scope = form.get("scope").map(String::as_str).unwrap_or("").trim();
        if scope.is_empty() {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                70011,
                "The provided request must include a 'scope' input parameter.",
                &correlation,
            );
        }
        // Client credentials allow exactly one `{resource}/.default` scope.
        let parts: Vec<&str> = scope.split_whitespace().collect();
        let default = parts
            .iter()
            .find_map(|p| p.strip_suffix("/.default"))
            .map(str::to_string);
        match default {
            Some(r) if parts.len() == 1 => r,
            _ => {
                return aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    70011,
                    &format!(
                        "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
                    ),
                    &correlation,
                );
            }
        }
    } else {
        match form.get("resource").filter(|r| !r.is_empty()) {
            Some(r) => r.clone(),
            None => {
                return aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'resource'.",
                    &correlation,
                );
            }
        }
    };
    if !resource_ok(shared, &resource) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            &format!(
                "The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
                auth.tenant_id
            ),
            &correlation,
        );
    }
    let now = Utc::now();
    let lifetime = auth.lifetime;
    let expires_at =
        now + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::seconds(3599));
    let token = make_jwt(&auth.tenant_id, &client_id, &resource, now, expires_at);
    // Forget tokens expired for a day: they would answer 401 as unknown anyway.
    let horizon = now - chrono::Duration::days(1);
    auth.tokens.retain(|_, t| t.expires_at > horizon);
    auth.tokens.insert(
        token.clone(),
        Token {
            client_id,
            expires_at,
            revoked: false,
        },
    );
    let secs = lifetime.as_secs();
    let body = if v2 {
        json!({"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": token})
    } else {
        // v1 answers numbers as strings.
        json!({
            "token_type": "Bearer",
            "expires_in": secs.to_string(),
            "ext_expires_in": secs.to_string(),
            "expires_on": expires_at.timestamp().to_string(),
            "not_before": now.timestamp().to_string(),
            "resource": resource,
            "access_token": token,
        })
    };
    (
        StatusCode::OK,
        [
            (header::CACHE_CONTROL, "no-store, no-cache"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(body),
    )
        .into_response()
}

fn make_jwt(
    tenant: &str,
    client_id: &str,
    resource: &str,
    now: DateTime<Utc>,
    exp: DateTime<Utc>,
) -> String {
    let header = json!({"typ": "JWT", "alg": "RS256", "kid": "syncline-sim"});
    let claims = json!({
        "aud": resource,
        "iss": format!("https://sts.windows.net/{tenant}/"),
        "iat": now.timestamp(),
        "nbf": now.timestamp(),
        "exp": exp.timestamp(),
        "appid": client_id,
        "appidacr": "1",
        "idp": format!("https://sts.windows.net/{tenant}/"),
        "idtyp": "app",
        "oid": uuid::Uuid::new_v4().to_string(),
        "sub": uuid::Uuid::new_v4().to_string(),
        "tid": tenant,
        "ver": "1.0",
    });
    let mut sig = [0u8; 32];
    rand::rng().fill_bytes(&mut sig);
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(sig)
    )
}

fn discovery(shared: &Shared, tenant: &str, v2: bool) -> Value {
    let base = &shared.base_url;
    let (p, issuer) = if v2 {
        ("/v2.0", format!("{base}/{tenant}/v2.0"))
    } else {
        ("", format!("{base}/{tenant}/"))
    };
    json!({
        "token_endpoint": format!("{base}/{tenant}/oauth2{p}/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{tenant}/discovery{p}/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{base}/{tenant}/oauth2{p}/authorize"),
        "device_authorization_endpoint": format!("{base}/{tenant}/oauth2{p}/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{tenant}/oauth2{p}/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "tid", "ver"],
        "kerberos_endpoint": format!("{base}/{tenant}/kerberos"),
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net"
    })
}

fn discovery_response(shared: &Shared, tenant: &str, headers: &HeaderMap, v2: bool) -> Response {
    let auth = lock(&shared.auth);
    let special = matches!(tenant, "common" | "organizations" | "consumers");
    if !special && !known_tenant(&auth, tenant) {
        let correlation = headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        return tenant_not_found(tenant, &correlation, "invalid_tenant");
    }
    let tenant = if special {
        auth.tenant_id.clone()
    } else {
        tenant.to_string()
    };
    drop(auth);
    Json(discovery(shared, &tenant, v2)).into_response()
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`
pub async fn openid_v2(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    discovery_response(&shared, &tenant, &headers, true)
}

/// `GET /{tenant}/.well-known/openid-configuration`
pub async fn openid_v1(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    discovery_response(&shared, &tenant, &headers, false)
}

/// `GET /{tenant}/discovery/v2.0/keys` — no signing keys are published:
/// access tokens are opaque to clients, and only this emulator checks them.
pub async fn jwks() -> Response {
    Json(json!({"keys": []})).into_response()
}

/// `GET /common/discovery/instance` — msal's instance discovery.
pub async fn instance_discovery(State(shared): State<Arc<Shared>>) -> Response {
    let host = shared
        .base_url
        .split("://")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let tenant = lock(&shared.auth).tenant_id.clone();
    Json(json!({
        "tenant_discovery_endpoint": format!("{}/{tenant}/v2.0/.well-known/openid-configuration", shared.base_url),
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}]
    }))
    .into_response()
}
