//! Shopify public-app OAuth install: `/oauth/shopify/install?shop=…` sends the merchant to
//! Shopify's consent screen with a single-use state nonce; the callback checks the `hmac`
//! query signature and the state, exchanges the code for a token and stores it encrypted.
//! (Shopify's documented flow: https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant)

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::{Duration, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;
use syncline_store::{ConnectionKind, NewConnection};

use crate::accounts::audit;
use crate::auth::secret::{random_token, token_hash};
use crate::auth::{ConsoleActor, Permission};
use crate::connections::{secret_name, valid_shop_domain};
use crate::console::error_page;
use crate::{AppError, AppState};

/// Access scopes the flows need.
pub const SCOPES: &str = "read_orders,write_orders,read_customers,read_products,write_products,read_inventory,write_inventory,\
read_locations,read_fulfillments,write_fulfillments,read_merchant_managed_fulfillment_orders,write_merchant_managed_fulfillment_orders";

/// The public app's credentials, from configuration.
#[derive(Clone)]
pub struct ShopifyApp {
    /// Client id (API key).
    pub client_id: String,
    /// Client secret: signs OAuth callbacks and webhooks.
    pub client_secret: SecretString,
    /// Where `/admin/oauth/*` and the Admin API live for a shop, with `{shop}` (the domain)
    /// and `{name}` (its subdomain) filled in; `None` means `https://{shop}`. Set only to point
    /// the flow at an emulator.
    pub oauth_base: Option<String>,
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth/shopify/install", get(install))
        .route("/oauth/shopify/callback", get(callback))
}

fn base_for(app: &ShopifyApp, shop: &str) -> String {
    match &app.oauth_base {
        Some(base) => base
            .replace("{shop}", shop)
            .replace("{name}", shop.trim_end_matches(".myshopify.com")),
        None => format!("https://{shop}"),
    }
}

#[derive(Debug, Deserialize)]
struct InstallQuery {
    #[serde(default)]
    shop: String,
}

async fn install(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
    Query(query): Query<InstallQuery>,
) -> Response {
    let result: Result<Response, AppError> = async {
        let context = actor.require(Permission::Manage)?;
        let app = state.shopify_app.as_ref().ok_or_else(|| {
            AppError::Conflict("The Shopify app is not configured (SYNCLINE_SHOPIFY_APP_KEY and SYNCLINE_SHOPIFY_APP_SECRET).".into())
        })?;
        let shop = query.shop.trim().to_lowercase();
        if !valid_shop_domain(&shop) {
            return Err(AppError::invalid("shop", "Enter the shop's address, like my-store.myshopify.com."));
        }
        let nonce = random_token();
        state
            .store
            .create_oauth_state(context.tenant.id, &token_hash(&nonce), &shop, &actor.label(), Utc::now() + Duration::minutes(10))
            .await?;
        let redirect_uri = state.link("/oauth/shopify/callback");
        let target = url::Url::parse_with_params(
            &format!("{}/admin/oauth/authorize", base_for(app, &shop)),
            &[("client_id", app.client_id.as_str()), ("scope", SCOPES), ("redirect_uri", redirect_uri.as_str()), ("state", nonce.as_str())],
        )
        .map_err(|e| AppError::Internal(format!("authorize URL: {e}")))?;
        Ok(Redirect::to(target.as_str()).into_response())
    }
    .await;
    result.unwrap_or_else(error_page)
}

/// Checks Shopify's `hmac` over the other query parameters, sorted, in constant time.
pub fn verify_query_hmac(params: &BTreeMap<String, String>, secret: &[u8]) -> bool {
    let Some(given) = params.get("hmac") else {
        return false;
    };
    let Ok(given) = hex::decode(given) else {
        return false;
    };
    let message = params
        .iter()
        .filter(|(key, _)| key.as_str() != "hmac" && key.as_str() != "signature")
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join("&");
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(message.as_bytes());
    mac.verify_slice(&given).is_ok()
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: String,
}

async fn callback(
    State(state): State<AppState>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let result: Result<Response, AppError> = async {
        let app = state.shopify_app.as_ref().ok_or_else(|| AppError::Conflict("The Shopify app is not configured.".into()))?;
        if !verify_query_hmac(&params, app.client_secret.expose_secret().as_bytes()) {
            audit(&state.store, None, "shopify", "oauth.rejected", json!({ "reason": "bad hmac" })).await;
            return Err(AppError::BadRequest("The request's signature is invalid; start the installation again from Syncline.".into()));
        }
        let shop = params.get("shop").map(|s| s.to_lowercase()).unwrap_or_default();
        if !valid_shop_domain(&shop) {
            return Err(AppError::BadRequest("The shop address is not a *.myshopify.com domain.".into()));
        }
        let nonce = params.get("state").cloned().unwrap_or_default();
        let (tenant, expected_shop, created_by) = state
            .store
            .take_oauth_state(&token_hash(&nonce))
            .await?
            .ok_or_else(|| AppError::BadRequest("This installation link expired or was already used; start again from Syncline.".into()))?;
        if expected_shop != shop {
            audit(&state.store, Some(tenant), &created_by, "oauth.rejected", json!({ "reason": "shop mismatch", "shop": shop })).await;
            return Err(AppError::BadRequest("The shop does not match the one the installation was started for.".into()));
        }
        let code = params.get("code").cloned().unwrap_or_default();
        let answer = reqwest::Client::new()
            .post(format!("{}/admin/oauth/access_token", base_for(app, &shop)))
            .json(&json!({ "client_id": app.client_id, "client_secret": app.client_secret.expose_secret(), "code": code }))
            .timeout(std::time::Duration::from_secs(15))
            .send()
            .await
            .map_err(|e| AppError::Upstream(format!("Shopify could not be reached to finish the installation: {}", e.without_url())))?;
        if !answer.status().is_success() {
            return Err(AppError::Upstream(format!("Shopify refused the installation code (HTTP {}); start again.", answer.status().as_u16())));
        }
        let token: TokenAnswer = answer.json().await.map_err(|_| AppError::Upstream("Shopify's answer could not be read.".into()))?;
        let connection = state
            .store
            .create_connection(tenant, &NewConnection {
                kind: ConnectionKind::Shopify,
                name: format!("{shop} (installed {})", Utc::now().format("%Y-%m-%d %H:%M")),
                sandbox: false,
                settings: match &app.oauth_base {
                    // Pointed at an emulator: the Admin API lives there too.
                    Some(_) => json!({ "shop_domain": shop, "api_version": "2025-07", "installed_via": "oauth", "base_url": base_for(app, &shop) }),
                    None => json!({ "shop_domain": shop, "api_version": "2025-07", "installed_via": "oauth" }),
                },
            })
            .await?;
        state.store.put_secret(tenant, &secret_name(connection.id, "access_token"), &SecretString::from(token.access_token)).await?;
        // Webhooks of a public app are signed with the app's client secret.
        state.store.put_secret(tenant, &secret_name(connection.id, "api_secret"), &app.client_secret).await?;
        audit(&state.store, Some(tenant), &created_by, "connection.oauth_install", json!({ "connection_id": connection.id, "shop": shop })).await;
        Ok(Redirect::to("/console/connections").into_response())
    }
    .await;
    result.unwrap_or_else(error_page)
}
