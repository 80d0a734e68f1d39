//! The built-in emulators behind sandbox connections: started in-process with the web server,
//! one emulated Shopify shop per tenant, one shared D365 environment.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use secrecy::SecretString;
use syncline_sim::Emulators;
use syncline_store::TenantId;

use super::{Sandbox, SandboxD365, SandboxShopify};

/// Emulators shared by every tenant's sandbox connections.
pub struct BuiltInSandbox {
    emulators: Arc<Emulators>,
}

impl BuiltInSandbox {
    /// Starts both emulators on free loopback ports.
    pub async fn start() -> Result<BuiltInSandbox, syncline_sim::SimError> {
        let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let emulators = syncline_sim::start(syncline_sim::SimOptions {
            shopify_listen: any,
            d365_listen: any,
            seed: 1,
            d365_tls_cert: None,
        })
        .await?;
        tracing::info!(shopify = %emulators.shopify.local_addr(), d365 = %emulators.d365.local_addr(), "sandbox emulators running");
        Ok(BuiltInSandbox {
            emulators: Arc::new(emulators),
        })
    }

    /// The running emulators, for inspection and fault injection.
    pub fn emulators(&self) -> &Emulators {
        &self.emulators
    }

    /// The emulated shop that belongs to a tenant.
    pub fn shop_name(tenant: TenantId) -> String {
        shop_name(tenant)
    }
}

fn shop_name(tenant: TenantId) -> String {
    format!("sandbox-{}", &tenant.0.simple().to_string()[..12])
}

impl Sandbox for BuiltInSandbox {
    fn shopify(&self, tenant: TenantId) -> BoxFuture<'_, Result<SandboxShopify, String>> {
        async move {
            let shopify = &self.emulators.shopify;
            let name = shop_name(tenant);
            let info = match shopify.shop_info(&name) {
                Ok(info) => info,
                Err(_) => shopify
                    .create_shop(syncline_sim::shopify::ShopSpec {
                        name,
                        ..Default::default()
                    })
                    .map_err(|e| format!("the Shopify emulator refused a new shop: {e}"))?,
            };
            Ok(SandboxShopify {
                base_url: info.url,
                shop_domain: info.shop_domain,
                access_token: SecretString::from(info.access_token),
                api_secret: SecretString::from(info.api_secret),
                api_version: info.api_version,
            })
        }
        .boxed()
    }

    fn place_test_order(&self, tenant: TenantId) -> BoxFuture<'_, Result<u64, String>> {
        async move {
            // Only catalogue SKUs, so the order can go through: a test order is for seeing
            // the integration work, not for seeing an unknown-SKU error.
            let spec = syncline_sim::shopify::TrafficSpec {
                custom_line_probability: 0.0,
                ..Default::default()
            };
            self.emulators
                .shopify
                .generate_orders_with(&shop_name(tenant), 1, &spec)
                .map_err(|e| format!("the Shopify emulator refused the order: {e}"))?
                .first()
                .copied()
                .ok_or_else(|| "the Shopify emulator placed no order".to_owned())
        }
        .boxed()
    }

    fn d365(&self) -> BoxFuture<'_, Result<SandboxD365, String>> {
        async move {
            let info = self.emulators.d365.info();
            Ok(SandboxD365 {
                environment_url: info.url,
                token_url: info.token_url,
                tenant_id: info.tenant_id,
                client_id: info.client_id,
                client_secret: SecretString::from(info.client_secret),
                data_area_id: info.data_area_id,
            })
        }
        .boxed()
    }
}
