//! Shopify's authorization-code grant for public apps, as documented at
//! https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant
//! The consent screen approves at once and redirects to `redirect_uri` with `code`, `hmac`
//! (hex HMAC-SHA256 of the other parameters, sorted, with the app's client secret), `host`,
//! `shop`, `state` and `timestamp`; `POST /admin/oauth/access_token` trades a code, once, for
//! the app's offline access token. An app's client id is its name in the emulator.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

use crate::{Inner, Shop};

fn oauth_error(description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": "invalid_request", "error_description": description })),
    )
        .into_response()
}

fn app_secret(shop: &Shop, client_id: &str) -> Option<String> {
    shop.apps
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|a| a.name == client_id)
        .map(|a| a.api_secret.clone())
}

/// `GET /admin/oauth/authorize`: the merchant approves; back to the app with a code.
pub(crate) async fn authorize(
    State(inner): State<Arc<Inner>>,
    Path(shop): Path<String>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let Ok(shop) = inner.shop(&shop) else {
        return oauth_error("unknown shop");
    };
    let client_id = params.get("client_id").cloned().unwrap_or_default();
    let Some(secret) = app_secret(&shop, &client_id) else {
        return oauth_error("The client_id is not an app of this shop");
    };
    let Some(redirect) = params
        .get("redirect_uri")
        .and_then(|r| url::Url::parse(r).ok())
    else {
        return oauth_error("redirect_uri is missing or not a URL");
    };
    let mut code_bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut code_bytes);
    let code: String = code_bytes.iter().map(|b| format!("{b:02x}")).collect();
    shop.oauth_codes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(code.clone(), client_id);
    let host = base64::engine::general_purpose::STANDARD_NO_PAD
        .encode(format!("admin.shopify.com/store/{}", shop.name));
    let mut answer: BTreeMap<&str, String> = BTreeMap::new();
    answer.insert("code", code);
    answer.insert("host", host);
    answer.insert("shop", shop.domain.clone());
    answer.insert("state", params.get("state").cloned().unwrap_or_default());
    answer.insert("timestamp", chrono::Utc::now().timestamp().to_string());
    let message = answer
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return oauth_error("bad app secret");
    };
    mac.update(message.as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut target = redirect;
    {
        let mut query = target.query_pairs_mut();
        for (k, v) in &answer {
            query.append_pair(k, v);
        }
        query.append_pair("hmac", &signature);
    }
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

/// The access-token request's fields (JSON or form).
#[derive(Debug, Deserialize)]
pub(crate) struct TokenRequest {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    code: String,
}

/// `POST /admin/oauth/access_token`: a code, once, for the app's offline token.
pub(crate) async fn access_token(
    State(inner): State<Arc<Inner>>,
    Path(shop): Path<String>,
    Json(request): Json<TokenRequest>,
) -> Response {
    let Ok(shop) = inner.shop(&shop) else {
        return oauth_error("unknown shop");
    };
    let app = shop
        .apps
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|a| a.name == request.client_id)
        .cloned();
    let Some(app) = app.filter(|a| a.api_secret == request.client_secret) else {
        return oauth_error("Invalid client_id or client_secret");
    };
    let issued_to = shop
        .oauth_codes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&request.code);
    if issued_to.as_deref() != Some(app.name.as_str()) {
        return oauth_error("The authorization code was not found or was already used");
    }
    Json(json!({ "access_token": app.access_token, "scope": "read_orders,write_orders,read_customers,read_products,write_products,read_inventory,write_inventory" })).into_response()
}
