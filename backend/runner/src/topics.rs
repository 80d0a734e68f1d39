//! Which Shopify webhook topics a pair needs, and a Shopify Admin API client for a
//! connection. Shared by the web layer (registration when a pair is activated) and the
//! periodic webhook-subscription check, so both want exactly the same subscriptions.

use secrecy::SecretString;
use syncline_shopify::client::{AdminClient, AdminConfig};
use syncline_store::{Connection, ConnectionId, Pair, Store, StoreError};

use crate::secret_name;

/// The flows a pair can switch on, and the Shopify webhook topics each needs.
pub const FLOWS: &[(&str, &[&str])] = &[
    (
        "orders",
        &["ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_CANCELLED"],
    ),
    ("customers", &["CUSTOMERS_CREATE", "CUSTOMERS_UPDATE"]),
    ("products", &[]),
    ("inventory", &[]),
    ("fulfillments", &[]),
    ("refunds", &["REFUNDS_CREATE"]),
    ("payments", &["ORDER_TRANSACTIONS_CREATE"]),
];

/// Topics every pair subscribes to whatever its flows.
pub const ALWAYS_TOPICS: &[&str] = &["APP_UNINSTALLED"];

/// The webhook topics a pair needs for its flows, sorted.
pub fn topics_for(pair: &Pair) -> Vec<&'static str> {
    let mut topics: Vec<&'static str> = ALWAYS_TOPICS.to_vec();
    for (flow, flow_topics) in FLOWS {
        if pair.flows.iter().any(|f| f == flow) {
            topics.extend_from_slice(flow_topics);
        }
    }
    topics.sort_unstable();
    topics.dedup();
    topics
}

/// Where Shopify delivers a connection's webhooks, given the public base URL (no trailing
/// slash).
pub fn webhook_callback_url(public_url: &str, connection: ConnectionId) -> String {
    format!(
        "{}/hooks/shopify/{connection}",
        public_url.trim_end_matches('/')
    )
}

/// Why a Shopify client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ShopifyClientError {
    /// The access token is not stored.
    #[error("the connection's access token is not set")]
    NoToken,
    /// Reading the secret failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The settings are unusable.
    #[error("{0}")]
    Config(String),
}

fn setting<'a>(connection: &'a Connection, key: &str) -> &'a str {
    connection
        .settings
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or("")
}

/// An Admin API client for a Shopify connection; decrypting its token leaves an audit row
/// naming `actor` and `purpose`.
pub async fn shopify_client(
    store: &Store,
    connection: &Connection,
    actor: &str,
    purpose: &str,
) -> Result<AdminClient, ShopifyClientError> {
    let token: SecretString = store
        .reveal_secret(
            connection.tenant_id,
            &secret_name(connection.id, "access_token"),
            actor,
            purpose,
        )
        .await
        .map_err(|error| match error {
            StoreError::NotFound => ShopifyClientError::NoToken,
            other => other.into(),
        })?;
    let mut config = AdminConfig::new(setting(connection, "shop_domain"), token);
    let version = setting(connection, "api_version");
    if !version.is_empty() {
        config.api_version = version.to_owned();
    }
    if let Some(base) = connection.settings.get("base_url").and_then(|v| v.as_str()) {
        config.base_url = Some(base.to_owned());
    }
    AdminClient::new(&config).map_err(|e| ShopifyClientError::Config(e.to_string()))
}
