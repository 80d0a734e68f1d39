//! `syncline demo`: the embedded default plus the emulators, with a demo tenant whose sandbox
//! pair is active and receiving a stream of generated orders — what a newcomer sees first.

use std::sync::Arc;

use anyhow::Context;
use chrono::Datelike;
use futures::FutureExt;
use syncline_store::{NewTenant, NewUser, Role as MemberRole, Store, Tenant, User};
use syncline_web::AppState;
use syncline_web::auth::principal::{Actor, TenantContext};
use syncline_web::connections::{PairInput, activate, create_pair};
use syncline_web::sandbox::{BuiltInSandbox, create_sandbox_connections};

use crate::Role;
use crate::config::Config;

/// The demo login.
pub const DEMO_EMAIL: &str = "demo@syncline.local";
const DEMO_SLUG: &str = "demo";

/// Runs the demo until Ctrl-C or SIGTERM.
pub async fn demo(mut config: Config, orders_per_second: f64) -> anyhow::Result<()> {
    config.sandbox = true;
    let console = format!("{}console", config.public_url);
    let hook: crate::serve::ReadyHook = Box::new(move |state, sandbox| {
        async move {
            let sandbox = sandbox.context("the sandbox emulators did not start")?;
            let (password, pair_name, shop) =
                prepare(&state, &sandbox, orders_per_second).await?;
            let emulators = sandbox.emulators();
            println!("Syncline demo is running.");
            println!("  Console:  {console}");
            println!("  Email:    {DEMO_EMAIL}");
            println!("  Password: {password}");
            println!("  Shopify emulator: {} (shop {shop})", emulators.shopify.base_url());
            println!("  D365 emulator:    {}", emulators.d365.info().url);
            if orders_per_second > 0.0 {
                println!(
                    "  Pair \"{pair_name}\" receives about {orders_per_second} generated order(s) per second from the emulated shop;"
                );
                println!("  each becomes a sales order in the emulated Dynamics 365.");
            } else {
                println!("  Pair \"{pair_name}\" is active; generate orders through the Shopify emulator.");
            }
            println!("Ctrl-C stops.");
            Ok(())
        }
        .boxed()
    });
    crate::serve::serve_with(config, Role::All, Some(hook)).await
}

/// Creates (or refreshes) the demo tenant, user and an active sandbox pair, then starts the
/// order stream. Returns the fresh password and the pair's name.
async fn prepare(
    state: &AppState,
    sandbox: &Arc<BuiltInSandbox>,
    orders_per_second: f64,
) -> anyhow::Result<(String, String, String)> {
    let store = &state.store;
    let tenant = demo_tenant(store).await?;
    let password = generate_password();
    let user = demo_user(store, &password).await?;
    store
        .upsert_member(tenant.id, user.id, MemberRole::Owner)
        .await?;
    let actor = Actor {
        user: Some(user),
        api_key: None,
        session: None,
        tenant: Some(TenantContext {
            tenant: tenant.clone(),
            role: MemberRole::Owner,
        }),
    };
    // The emulators start empty on every run, so pairs of an earlier run point at emulators
    // that are gone: set them back to draft (their history stays, and they no longer hold a
    // sandbox entitlement of the plan) and make a fresh one.
    for pair in store.list_pairs(tenant.id).await? {
        if pair.status != syncline_store::PairStatus::Draft {
            store
                .set_pair_status(tenant.id, pair.id, syncline_store::PairStatus::Draft, None)
                .await?;
        }
    }
    demo_subscription(store, tenant.id).await?;
    let (shopify, d365) = create_sandbox_connections(state, &actor)
        .await
        .map_err(|e| anyhow::anyhow!("creating the sandbox connections failed: {e}"))?;
    let name = format!(
        "Demo store → Demo F&O #{}",
        store.list_pairs(tenant.id).await?.len() + 1
    );
    let pair = create_pair(
        state,
        &actor,
        &PairInput {
            name: name.clone(),
            shopify_connection_id: Some(shopify.id.0),
            d365_connection_id: Some(d365.id.0),
            environment: "sandbox".into(),
            flows: vec!["orders".into()],
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("creating the demo pair failed: {e}"))?;
    activate(state, &actor, pair.id)
        .await
        .map_err(|e| anyhow::anyhow!("activating the demo pair failed: {e}"))?;
    let shop = BuiltInSandbox::shop_name(tenant.id);
    if orders_per_second > 0.0 {
        sandbox.emulators().shopify.start_traffic(
            &shop,
            syncline_sim::shopify::TrafficSpec {
                orders_per_sec: orders_per_second,
                // A few custom lines with SKUs F&O does not know show what a dead letter
                // looks like.
                custom_line_probability: 0.02,
                refund_probability: 0.0,
                ..Default::default()
            },
        )?;
    }
    Ok((password, name, shop))
}

/// The plan catalogue's two demo plans and the demo tenant's subscription: "Connect
/// Monthly" with one production pair, anchored on the first day of last month so that a
/// closed period exists and the billing pass issues its invoice within seconds.
async fn demo_subscription(store: &Store, tenant: syncline_store::TenantId) -> anyhow::Result<()> {
    use std::str::FromStr;
    use syncline_core::billing::Interval;
    for (code, name, price, interval) in [
        ("connect", "Connect", "599.00", Interval::Year),
        (
            "connect-monthly",
            "Connect Monthly",
            "699.00",
            Interval::Month,
        ),
    ] {
        if store.plan_by_code(code).await?.is_none() {
            store
                .create_plan(&syncline_store::NewPlan {
                    code: code.into(),
                    name: name.into(),
                    price_per_pair: rust_decimal::Decimal::from_str(price)?,
                    currency: "USD".into(),
                    interval,
                    included_transactions: 10_000,
                    included_api_calls: 100_000,
                    sandbox_pairs: 3,
                    active: true,
                })
                .await?;
        }
    }
    if store.subscription(tenant).await?.is_some() {
        return Ok(());
    }
    let plan = store
        .plan_by_code("connect-monthly")
        .await?
        .context("the demo plan is missing")?;
    let today = chrono::Utc::now().date_naive();
    let this_month = today.with_day(1).unwrap_or(today);
    let anchor = this_month
        .checked_sub_months(chrono::Months::new(1))
        .unwrap_or(this_month);
    store
        .set_subscription(
            tenant,
            plan.id,
            1,
            anchor,
            rust_decimal::Decimal::from_str("0.20")?,
            "demo",
        )
        .await?;
    Ok(())
}

async fn demo_tenant(store: &Store) -> anyhow::Result<Tenant> {
    if let Some(tenant) = store
        .list_tenants()
        .await?
        .into_iter()
        .find(|t| t.slug == DEMO_SLUG)
    {
        return Ok(tenant);
    }
    Ok(store
        .create_tenant(&NewTenant {
            slug: DEMO_SLUG.into(),
            name: "Demo Company".into(),
        })
        .await?)
}

/// The demo user, with a new password on every run (it is printed, so it must be fresh).
async fn demo_user(store: &Store, password: &str) -> anyhow::Result<User> {
    let hash = syncline_web::auth::password::hash_password(password.to_owned()).await?;
    match store.user_by_email(DEMO_EMAIL).await? {
        Some((user, _)) => {
            store.set_password(user.id, &hash).await?;
            Ok(user)
        }
        None => Ok(store
            .create_user(&NewUser {
                email: DEMO_EMAIL.into(),
                display_name: "Demo User".into(),
                password_hash: Some(hash),
                is_platform_admin: false,
            })
            .await?),
    }
}

fn generate_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
