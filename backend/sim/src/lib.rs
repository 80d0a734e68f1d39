//! Shopify and D365 emulators, started together: what `syncline sim`, the test harness, the
//! benchmarks and the console's sandbox pairs run against.
//!
//! Each emulator lives in its own crate (`sim/shopify`, `sim/d365`) and is written from the
//! public API documentation, never from the connectors.

use std::net::SocketAddr;
use std::path::PathBuf;

pub use syncline_sim_d365 as d365;
pub use syncline_sim_shopify as shopify;

/// How to start both emulators.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Shopify emulator address (port 0 picks one).
    pub shopify_listen: SocketAddr,
    /// D365 emulator address (port 0 picks one).
    pub d365_listen: SocketAddr,
    /// Seed for identities, master data and generated traffic.
    pub seed: u64,
    /// Serve D365 and its token endpoint over TLS, writing the certificate (PEM) here.
    pub d365_tls_cert: Option<PathBuf>,
}

/// Why the emulators could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The Shopify emulator failed.
    #[error("Shopify emulator: {0}")]
    Shopify(#[from] shopify::Error),
    /// The D365 emulator failed.
    #[error("D365 emulator: {0}")]
    D365(#[from] d365::Error),
}

/// Both emulators, running.
pub struct Emulators {
    /// The Shopify Admin API emulator.
    pub shopify: shopify::ShopifyEmulator,
    /// The D365 F&O and Entra ID emulator.
    pub d365: d365::D365Emulator,
}

/// Starts both emulators.
pub async fn start(options: SimOptions) -> Result<Emulators, SimError> {
    let shopify = shopify::start(shopify::Config {
        listen: options.shopify_listen,
        seed: options.seed,
        ..Default::default()
    })
    .await?;
    let d365 = match d365::start(d365::Config {
        listen: options.d365_listen,
        seed: options.seed,
        tls: options.d365_tls_cert.clone(),
        data: aligned_d365_seed(),
        ..Default::default()
    })
    .await
    {
        Ok(d365) => d365,
        Err(error) => {
            shopify.shutdown().await;
            return Err(error.into());
        }
    };
    Ok(Emulators { shopify, d365 })
}

/// How many seeded Shopify products have released products of the same SKU in D365.
pub const ALIGNED_PRODUCTS: u32 = 100;

/// D365 master data whose released products carry the SKUs the Shopify emulator gives its
/// variants (`SKU-{product:05}-{variant}`, up to three variants per product), so orders placed
/// in an emulated shop are valid sales orders in the emulated F&O, as in a real installation
/// where the shop's SKUs are the item numbers. The emulator's own `A0001…` items stay too.
fn aligned_d365_seed() -> d365::SeedSpec {
    let defaults = d365::SeedSpec::default();
    let generic = (1..=defaults.product_count).map(|n| d365::ProductSeed {
        item_number: format!("{}{n:04}", defaults.item_prefix),
        name: format!("Item {}{n:04}", defaults.item_prefix),
        price: "25.00".into(),
    });
    let shop_skus = (1..=ALIGNED_PRODUCTS).flat_map(|n| {
        (1..=3).map(move |v| d365::ProductSeed {
            item_number: format!("SKU-{n:05}-{v}"),
            name: format!("Shopify product {n} variant {v}"),
            price: "19.99".into(),
        })
    });
    d365::SeedSpec {
        products: generic.chain(shop_skus).collect(),
        ..defaults
    }
}

impl Emulators {
    /// What clients need to connect, as `syncline sim` prints it.
    pub fn info(&self) -> serde_json::Value {
        serde_json::json!({ "shopify": self.shopify.info(), "d365": self.d365.info() })
    }

    /// Stops both.
    pub async fn shutdown(self) {
        self.shopify.shutdown().await;
        self.d365.shutdown().await;
    }
}
