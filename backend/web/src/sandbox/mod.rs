//! Sandbox connections: a tenant can try a pair against the built-in emulators without real
//! accounts. The web layer only knows this interface; the binary provides the emulators.

mod builtin;

pub use builtin::BuiltInSandbox;

use futures::future::BoxFuture;
use secrecy::SecretString;
use serde_json::json;
use syncline_store::{Connection, ConnectionKind, NewConnection, TenantId};

use crate::accounts::audit;
use crate::auth::{Actor, Permission};
use crate::connections::secret_name;
use crate::{AppError, AppState};

/// What a sandbox Shopify shop looks like to a client.
pub struct SandboxShopify {
    /// Base URL the Admin API paths are appended to.
    pub base_url: String,
    /// `{name}.myshopify.com`.
    pub shop_domain: String,
    /// Admin API token.
    pub access_token: SecretString,
    /// Webhook signing secret.
    pub api_secret: SecretString,
    /// API version.
    pub api_version: String,
}

/// What the sandbox D365 environment looks like to a client.
pub struct SandboxD365 {
    /// Environment URL (`/data/…` is appended).
    pub environment_url: String,
    /// Token endpoint.
    pub token_url: String,
    /// Entra tenant id.
    pub tenant_id: String,
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: SecretString,
    /// Legal entity.
    pub data_area_id: String,
}

/// Hands out emulator accounts.
pub trait Sandbox: Send + Sync + 'static {
    /// A Shopify shop of the tenant's own in the emulator (created on first use).
    fn shopify(&self, tenant: TenantId) -> BoxFuture<'_, Result<SandboxShopify, String>>;
    /// The D365 emulator environment.
    fn d365(&self) -> BoxFuture<'_, Result<SandboxD365, String>>;
    /// Places an order in the tenant's emulator shop, which then delivers `orders/create` to
    /// every subscribed webhook like Shopify would; answers the Shopify order id.
    fn place_test_order(&self, tenant: TenantId) -> BoxFuture<'_, Result<u64, String>>;
}

/// Creates one sandbox Shopify and one sandbox D365 connection for the actor's tenant.
pub async fn create_sandbox_connections(
    state: &AppState,
    actor: &Actor,
) -> Result<(Connection, Connection), AppError> {
    let context = actor.require(Permission::Manage)?;
    let tenant = context.tenant.id;
    let sandbox = state.sandbox.as_ref().ok_or_else(|| {
        AppError::Conflict("Sandbox emulators are not running on this installation.".into())
    })?;
    let shop = sandbox.shopify(tenant).await.map_err(AppError::Upstream)?;
    let erp = sandbox.d365().await.map_err(AppError::Upstream)?;
    let suffix = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let shopify = state
        .store
        .create_connection(tenant, &NewConnection {
            kind: ConnectionKind::Shopify,
            name: format!("Sandbox Shopify {suffix}"),
            sandbox: true,
            settings: json!({ "shop_domain": shop.shop_domain, "api_version": shop.api_version, "base_url": shop.base_url }),
        })
        .await?;
    state
        .store
        .put_secret(
            tenant,
            &secret_name(shopify.id, "access_token"),
            &shop.access_token,
        )
        .await?;
    state
        .store
        .put_secret(
            tenant,
            &secret_name(shopify.id, "api_secret"),
            &shop.api_secret,
        )
        .await?;
    let d365 = state
        .store
        .create_connection(
            tenant,
            &NewConnection {
                kind: ConnectionKind::D365,
                name: format!("Sandbox D365 {suffix}"),
                sandbox: true,
                settings: json!({
                    "environment_url": erp.environment_url,
                    "entra_tenant_id": erp.tenant_id,
                    "client_id": erp.client_id,
                    "data_area_id": erp.data_area_id,
                    "token_url": erp.token_url,
                }),
            },
        )
        .await?;
    state
        .store
        .put_secret(
            tenant,
            &secret_name(d365.id, "client_secret"),
            &erp.client_secret,
        )
        .await?;
    audit(
        &state.store,
        Some(tenant),
        &actor.label(),
        "connection.sandbox_create",
        json!({ "shopify": shopify.id, "d365": d365.id }),
    )
    .await;
    Ok((shopify, d365))
}
