//! The webhook intake through real HTTP on both backends: verify, store once, acknowledge.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::{MODES, TestApp, spawn_app, unique_email};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::Sha256;
use syncline_store::{ConnectionKind, InboxStatus, Role, TenantId};
use syncline_web::sandbox::BuiltInSandbox;

const ORDER: &str = include_str!(
    "../../../../shared/fixtures/shopify/webhooks/shopify_webhook_orders_create_2026-07.json"
);

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

struct Setup {
    tenant: TenantId,
    client: reqwest::Client,
    csrf: String,
    shopify: String,
    pair: String,
    secret: String,
}

async fn active_sandbox_pair(app: &TestApp) -> Setup {
    let tenant = app
        .tenant(&format!(
            "t{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ))
        .await;
    let email = unique_email("owner");
    app.user(&email, Some((tenant, Role::Owner)), false).await;
    let client = app.session(&email).await;
    let csrf = app.csrf(&client).await;
    client
        .post(app.url("/console/connections/sandbox"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let connections = app.store.list_connections(tenant).await.unwrap();
    let id_of = |kind| connections.iter().find(|c| c.kind == kind).unwrap().id;
    let (shopify, d365) = (id_of(ConnectionKind::Shopify), id_of(ConnectionKind::D365));
    let pair: Value = client
        .post(app.url("/api/v1/pairs"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "P", "shopify_connection_id": shopify, "d365_connection_id": d365, "environment": "sandbox", "flows": ["orders"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pair = pair["id"].as_str().unwrap().to_owned();
    let activated = client
        .post(app.url(&format!("/api/v1/pairs/{pair}/activate")))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(activated.status(), 200);
    let secret = app
        .store
        .reveal_secret(
            tenant,
            &syncline_web::connections::secret_name(shopify, "api_secret"),
            "test",
            "sign test deliveries",
        )
        .await
        .unwrap()
        .expose_secret()
        .to_owned();
    Setup {
        tenant,
        client,
        csrf,
        shopify: shopify.to_string(),
        pair,
        secret,
    }
}

async fn deliver(
    app: &TestApp,
    connection: &str,
    webhook_id: &str,
    body: &[u8],
    signature: &str,
) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(app.url(&format!("/hooks/shopify/{connection}")))
        .header("Content-Type", "application/json")
        .header("X-Shopify-Topic", "orders/create")
        .header("X-Shopify-Hmac-Sha256", signature)
        .header("X-Shopify-Shop-Domain", "sandbox.myshopify.com")
        .header("X-Shopify-API-Version", "2026-07")
        .header("X-Shopify-Webhook-Id", webhook_id)
        .header("X-Shopify-Triggered-At", "2026-11-28T01:00:00Z")
        .header("X-Shopify-Event-Id", "98880550-7158-44d4-b7cd-2c97c8a091b5")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn signed_deliveries_are_stored_once_and_forged_or_oversized_ones_not_at_all() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let setup = active_sandbox_pair(&app).await;
        let body = ORDER.as_bytes();
        let good = sign(&setup.secret, body);

        let (status, text) = deliver(&app, &setup.shopify, "wh-1", body, &good).await;
        assert_eq!(
            (status, text.contains("stored")),
            (200, true),
            "{mode:?}: {text}"
        );
        let (status, text) = deliver(&app, &setup.shopify, "wh-1", body, &good).await;
        assert_eq!(
            (status, text.contains("duplicate")),
            (200, true),
            "a repeated delivery is acknowledged: {text}"
        );

        let (status, _) = deliver(
            &app,
            &setup.shopify,
            "wh-2",
            body,
            &sign("forged-secret", body),
        )
        .await;
        assert_eq!(status, 401, "forged signature");
        let (status, _) = deliver(&app, &setup.shopify, "wh-3", body, "").await;
        assert_eq!(status, 401, "missing signature");
        let (status, _) =
            deliver(&app, &uuid::Uuid::new_v4().to_string(), "wh-4", body, &good).await;
        assert_eq!(status, 404, "unknown connection");
        let huge = vec![b' '; 3 * 1024 * 1024];
        let (status, _) = deliver(
            &app,
            &setup.shopify,
            "wh-5",
            &huge,
            &sign(&setup.secret, &huge),
        )
        .await;
        assert_eq!(status, 413, "oversized body");

        let broken = b"{\"id\": 1, \"truncated";
        let (status, _) = deliver(
            &app,
            &setup.shopify,
            "wh-6",
            broken,
            &sign(&setup.secret, broken),
        )
        .await;
        assert_eq!(status, 200, "a signed but malformed body is kept, not lost");

        let paused = setup
            .client
            .post(app.url(&format!("/api/v1/pairs/{}/pause", setup.pair)))
            .header("x-csrf-token", &setup.csrf)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(paused.status(), 200);
        let (status, _) = deliver(&app, &setup.shopify, "wh-7", body, &good).await;
        assert_eq!(status, 200, "a paused pair's events are stored and held");

        let events = app.store.list_inbox(setup.tenant, 50).await.unwrap();
        let by_id = |id: &str| {
            events
                .iter()
                .find(|e| e.webhook_id == id)
                .map(|e| (e.status, e.error.clone()))
        };
        assert_eq!(
            events.len(),
            3,
            "{mode:?}: exactly the three acceptable deliveries are stored: {events:?}"
        );
        // Accepted: waiting for routing, or already routed into runs.
        assert!(matches!(
            by_id("wh-1").unwrap().0,
            InboxStatus::Received | InboxStatus::Done
        ));
        let (failed, error) = by_id("wh-6").unwrap();
        assert_eq!(failed, InboxStatus::Failed);
        assert!(
            error.unwrap().starts_with("malformed JSON"),
            "the parse error is recorded"
        );
        assert_eq!(by_id("wh-7").unwrap().0, InboxStatus::Held);
        let stored = events.iter().find(|e| e.webhook_id == "wh-1").unwrap();
        assert_eq!(stored.payload, body, "the raw body is kept byte for byte");
        let audit = app.store.tenant_audit_log(setup.tenant, 100).await.unwrap();
        assert!(
            audit
                .iter()
                .filter(|e| e.action == "webhook.rejected")
                .count()
                >= 2,
            "rejections leave an audit trail"
        );
    }
}

#[tokio::test]
async fn orders_placed_in_the_emulated_shop_arrive_signed_at_the_intake() {
    let app = spawn_app(common::Mode::Embedded).await;
    let setup = active_sandbox_pair(&app).await;
    let shop = BuiltInSandbox::shop_name(setup.tenant);
    let placed = app
        .sandbox
        .emulators()
        .shopify
        .generate_orders(&shop, 3)
        .unwrap();
    assert_eq!(placed.len(), 3);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = app.store.list_inbox(setup.tenant, 50).await.unwrap();
        let orders = events
            .iter()
            .filter(|e| {
                e.topic == "orders/create"
                    && matches!(e.status, InboxStatus::Received | InboxStatus::Done)
            })
            .count();
        if orders >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {orders} of 3 orders arrived: {:?}",
            events
                .iter()
                .map(|e| (&e.topic, e.status))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_previous_signing_secret_still_verifies_during_the_rotation_grace_period() {
    let app = spawn_app(common::Mode::Embedded).await;
    let tenant = app.tenant("rotation").await;
    let email = unique_email("owner");
    app.user(&email, Some((tenant, Role::Owner)), false).await;
    let client = app.session(&email).await;
    let csrf = app.csrf(&client).await;
    let created: Value = client
        .post(app.url("/api/v1/connections"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"kind": "shopify", "name": "Store", "shop_domain": "rot.myshopify.com", "access_token": "shpat_x", "api_secret": "first-secret"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let body = ORDER.as_bytes();
    assert_eq!(
        deliver(&app, id, "r-1", body, &sign("first-secret", body))
            .await
            .0,
        200
    );
    let rotated = client.patch(app.url(&format!("/api/v1/connections/{id}"))).header("x-csrf-token", &csrf).json(&json!({"name": "Store", "shop_domain": "rot.myshopify.com", "api_secret": "second-secret"})).send().await.unwrap();
    assert_eq!(rotated.status(), 200);
    assert_eq!(
        deliver(&app, id, "r-2", body, &sign("second-secret", body))
            .await
            .0,
        200,
        "the new secret works at once"
    );
    assert_eq!(
        deliver(&app, id, "r-3", body, &sign("first-secret", body))
            .await
            .0,
        200,
        "the old one still works for an hour"
    );
    assert_eq!(
        deliver(&app, id, "r-4", body, &sign("never-the-secret", body))
            .await
            .0,
        401
    );
    let held = app.store.list_inbox(tenant, 10).await.unwrap();
    assert!(
        held.iter().all(|e| e.status == InboxStatus::Held),
        "no active pair yet: held, not dropped"
    );
    assert_eq!(held.len(), 3);
}

async fn deliver_topic(
    app: &TestApp,
    connection: &str,
    topic: &str,
    webhook_id: &str,
    body: &[u8],
    secret: &str,
) -> u16 {
    reqwest::Client::new()
        .post(app.url(&format!("/hooks/shopify/{connection}")))
        .header("X-Shopify-Topic", topic)
        .header("X-Shopify-Hmac-Sha256", sign(secret, body))
        .header("X-Shopify-Shop-Domain", "sandbox.myshopify.com")
        .header("X-Shopify-API-Version", "2026-07")
        .header("X-Shopify-Webhook-Id", webhook_id)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn privacy_webhooks_redact_the_stored_personal_data_of_a_customer_and_then_of_the_shop() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let setup = active_sandbox_pair(&app).await;
        let theirs: Value = serde_json::from_str(ORDER).unwrap();
        let mut someone_else = theirs.clone();
        someone_else["id"] = json!(1_000_000_000_000_001_u64);
        someone_else["email"] = json!("other@example.com");
        someone_else["contact_email"] = json!("other@example.com");
        someone_else["customer"] = json!({ "id": 42, "email": "other@example.com" });
        let other_body = someone_else.to_string();
        assert_eq!(
            deliver_topic(
                &app,
                &setup.shopify,
                "orders/create",
                "p-1",
                ORDER.as_bytes(),
                &setup.secret
            )
            .await,
            200
        );
        assert_eq!(
            deliver_topic(
                &app,
                &setup.shopify,
                "orders/create",
                "p-2",
                other_body.as_bytes(),
                &setup.secret
            )
            .await,
            200
        );

        let request = json!({
            "shop_id": 954889, "shop_domain": "sandbox.myshopify.com",
            "customer": { "id": 115310627314723954_u64, "email": "john@example.com", "phone": "555-625-1199" },
            "orders_to_redact": [820982911946154508_u64]
        })
        .to_string();
        assert_eq!(
            deliver_topic(
                &app,
                &setup.shopify,
                "customers/redact",
                "p-3",
                request.as_bytes(),
                &setup.secret
            )
            .await,
            200
        );
        let events = app.store.list_inbox(setup.tenant, 10).await.unwrap();
        let payload = |id: &str| {
            String::from_utf8(
                events
                    .iter()
                    .find(|e| e.webhook_id == id)
                    .unwrap()
                    .payload
                    .clone(),
            )
            .unwrap()
        };
        assert!(
            payload("p-1").contains("\"redacted\":true")
                && !payload("p-1").contains("john@example.com"),
            "{mode:?}: the customer's order is redacted"
        );
        assert!(
            !payload("p-3").contains("555-625-1199"),
            "the request itself keeps no personal data"
        );
        assert!(
            payload("p-2").contains("other@example.com"),
            "another customer's order is untouched"
        );

        let shop_request =
            json!({ "shop_id": 954889, "shop_domain": "sandbox.myshopify.com" }).to_string();
        assert_eq!(
            deliver_topic(
                &app,
                &setup.shopify,
                "shop/redact",
                "p-4",
                shop_request.as_bytes(),
                &setup.secret
            )
            .await,
            200
        );
        let events = app.store.list_inbox(setup.tenant, 10).await.unwrap();
        assert!(
            events
                .iter()
                .all(|e| String::from_utf8_lossy(&e.payload).contains("\"redacted\":true")),
            "{mode:?}: shop/redact removes everything"
        );
        let audit = app.store.tenant_audit_log(setup.tenant, 50).await.unwrap();
        assert!(
            audit
                .iter()
                .any(|e| e.action == "privacy.customer_redacted")
                && audit.iter().any(|e| e.action == "privacy.shop_redacted")
        );
    }
}

/// A suspended tenant's orders are stored and held, and reactivating the tenant routes
/// them: nothing is lost while a tenant is suspended.
#[tokio::test]
async fn a_suspended_tenants_orders_are_held_and_routed_on_reactivation() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let setup = active_sandbox_pair(&app).await;
        let admin_email = unique_email("admin");
        app.user(&admin_email, None, true).await;
        let admin = app.session(&admin_email).await;
        let admin_csrf = app.csrf(&admin).await;
        let tenant_action = |action: &str| {
            admin
                .post(app.url(&format!("/api/v1/admin/tenants/{}/{action}", setup.tenant)))
                .header("x-csrf-token", &admin_csrf)
                .send()
        };
        assert_eq!(tenant_action("suspend").await.unwrap().status(), 204);

        let body = ORDER.as_bytes();
        let (status, _) = deliver(
            &app,
            &setup.shopify,
            "wh-suspended",
            body,
            &sign(&setup.secret, body),
        )
        .await;
        assert_eq!(status, 200, "{mode:?}: acknowledged while suspended");
        let held = app.store.list_inbox(setup.tenant, 10).await.unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(
            held[0].status,
            InboxStatus::Held,
            "{mode:?}: held, not dropped"
        );
        assert!(
            app.store
                .list_runs(setup.tenant, &Default::default(), None, 10)
                .await
                .unwrap()
                .runs
                .is_empty(),
            "{mode:?}: no work while suspended"
        );

        assert_eq!(tenant_action("reactivate").await.unwrap().status(), 204);
        let events = app.store.list_inbox(setup.tenant, 10).await.unwrap();
        assert_eq!(
            events[0].status,
            InboxStatus::Done,
            "{mode:?}: routed on reactivation: {events:?}"
        );
        let runs = app
            .store
            .list_runs(setup.tenant, &Default::default(), None, 10)
            .await
            .unwrap()
            .runs;
        assert_eq!(runs.len(), 1, "{mode:?}: one run for the held order");
    }
}
