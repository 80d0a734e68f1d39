//! Billing through the API and the console, on both modes: platform admins manage the plan
//! catalogue and subscriptions, activation beyond the entitlement is refused (API and
//! console) with a message naming the plan and the limit, a suspended subscription holds
//! events and resuming releases them, owners (not viewers) see billing, and invoices are
//! issued once per period, shown, downloaded as CSV and marked paid.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use common::{MODES, TestApp, spawn_app, unique_email};
use reqwest::StatusCode;
use serde_json::{Value, json};
use syncline_store::{
    InboxInsert, InboxStatus, NewInboxEvent, NewPair, PairId, Role, SubscriptionStatus, TenantId,
};

struct Session {
    client: reqwest::Client,
    csrf: String,
}

impl Session {
    async fn new(app: &TestApp, email: &str) -> Session {
        let client = app.session(email).await;
        let csrf = app.csrf(&client).await;
        Session { client, csrf }
    }

    async fn send(
        &self,
        app: &TestApp,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, String) {
        let mut request = self
            .client
            .request(method, app.url(path))
            .header("x-csrf-token", &self.csrf);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    }

    async fn form(
        &self,
        app: &TestApp,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, String) {
        let mut form: Vec<(&str, &str)> = vec![("csrf", self.csrf.as_str())];
        form.extend_from_slice(fields);
        let response = self
            .client
            .post(app.url(path))
            .form(&form)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }
}

async fn production_pairs(
    app: &TestApp,
    owner: &Session,
    tenant: TenantId,
    count: usize,
) -> Vec<PairId> {
    let (status, page) = owner.form(app, "/console/connections/sandbox", &[]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let connections = app.store.list_connections(tenant).await.unwrap();
    let shop = connections
        .iter()
        .find(|c| c.kind == syncline_store::ConnectionKind::Shopify)
        .unwrap();
    let erp = connections
        .iter()
        .find(|c| c.kind == syncline_store::ConnectionKind::D365)
        .unwrap();
    let mut pairs = Vec::new();
    for index in 0..count {
        let pair = app
            .store
            .create_pair(
                tenant,
                &NewPair {
                    name: format!("Production {}", index + 1),
                    shopify_connection_id: shop.id,
                    d365_connection_id: erp.id,
                    environment: "production".into(),
                    flows: vec!["orders".into()],
                },
            )
            .await
            .unwrap();
        pairs.push(pair.id);
    }
    pairs
}

#[tokio::test]
async fn plans_subscriptions_entitlements_and_invoices_through_api_and_console() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let tenant = app
            .tenant(&format!("acme-{}", uuid::Uuid::new_v4().simple()))
            .await;
        let admin_email = unique_email("admin");
        let owner_email = unique_email("owner");
        let viewer_email = unique_email("viewer");
        app.user(&admin_email, None, true).await;
        app.user(&owner_email, Some((tenant, Role::Owner)), false)
            .await;
        app.user(&viewer_email, Some((tenant, Role::Viewer)), false)
            .await;
        let admin = Session::new(&app, &admin_email).await;
        let owner = Session::new(&app, &owner_email).await;
        let viewer = Session::new(&app, &viewer_email).await;
        let post = reqwest::Method::POST;
        let put = reqwest::Method::PUT;
        let get = reqwest::Method::GET;

        // --- The catalogue: platform admins only, validated, decimals kept as written.
        let connect = json!({
            "code": "connect", "name": "Connect", "price_per_pair": "599.00", "currency": "usd",
            "interval": "year", "included_transactions": "10000", "included_api_calls": "100000",
            "sandbox_pairs": "1"
        });
        let (status, _) = owner
            .send(
                &app,
                post.clone(),
                "/api/v1/admin/plans",
                Some(connect.clone()),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{mode:?}: owners cannot add plans"
        );
        let mut bad = connect.clone();
        bad["price_per_pair"] = json!("5,99");
        let (status, body) = admin
            .send(&app, post.clone(), "/api/v1/admin/plans", Some(bad))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains("price_per_pair"), "{body}");
        let (status, body) = admin
            .send(
                &app,
                post.clone(),
                "/api/v1/admin/plans",
                Some(connect.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let plan: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(plan["price_per_pair"], "599.00");
        assert_eq!(plan["currency"], "USD");
        let (status, _) = admin
            .send(
                &app,
                post.clone(),
                "/api/v1/admin/plans",
                Some(connect.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a taken code");
        // And from the console form.
        let (status, page) = admin
            .form(
                &app,
                "/console/admin/billing/plans",
                &[
                    ("code", "connect-monthly"),
                    ("name", "Connect Monthly"),
                    ("price_per_pair", "699"),
                    ("currency", "USD"),
                    ("interval", "month"),
                    ("included_transactions", "10000"),
                    ("included_api_calls", "100000"),
                    ("sandbox_pairs", "1"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("Added the Connect Monthly plan."), "{page}");

        // --- A subscription with one production pair.
        let path = format!("/api/v1/admin/tenants/{tenant}/subscription");
        let (status, body) = admin
            .send(
                &app,
                put.clone(),
                &path,
                Some(json!({ "plan": "connect", "pairs": "1", "tax_percent": "20" })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _) = owner
            .send(
                &app,
                put.clone(),
                &path,
                Some(json!({ "plan": "connect", "pairs": "9" })),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "owners cannot raise their own entitlement"
        );

        // --- Entitlement: the second production pair is refused, by API and by console.
        let pairs = production_pairs(&app, &owner, tenant, 2).await;
        let (status, body) = owner
            .send(
                &app,
                post.clone(),
                &format!("/api/v1/pairs/{}/activate", pairs[0]),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {body}");
        let (status, body) = owner
            .send(
                &app,
                post.clone(),
                &format!("/api/v1/pairs/{}/activate", pairs[1]),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(
            body.contains("Your Connect plan allows 1 production pair(s) and 1 are in use"),
            "the message names the plan and the limit: {body}"
        );
        let (status, page) = owner
            .form(&app, &format!("/console/pairs/{}/activate", pairs[1]), &[])
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(
            page.contains("Your Connect plan allows 1 production pair(s)"),
            "{page}"
        );
        assert_eq!(
            app.store
                .pair(tenant, pairs[1])
                .await
                .unwrap()
                .unwrap()
                .status,
            syncline_store::PairStatus::Draft
        );
        // Fewer pairs than in use is refused; more lets the pair in.
        let (status, body) = admin
            .send(
                &app,
                put.clone(),
                &path,
                Some(json!({ "plan": "connect", "pairs": "0" })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let (status, page) = admin
            .form(
                &app,
                &format!("/console/admin/billing/tenants/{tenant}/subscription"),
                &[("plan", "connect"), ("pairs", "2"), ("tax_percent", "")],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(
            page.contains("Subscription saved: Connect plan, 2 production pair(s)."),
            "{page}"
        );
        let (status, body) = owner
            .send(
                &app,
                post.clone(),
                &format!("/api/v1/pairs/{}/activate", pairs[1]),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let subscription = app.store.subscription(tenant).await.unwrap().unwrap();
        assert_eq!(
            subscription.tax_rate.to_string(),
            "0.20",
            "an empty tax field keeps the rate"
        );
        assert_eq!(
            app.store.subscription_changes(tenant).await.unwrap().len(),
            2
        );

        // --- Suspension holds events; resuming releases them.
        let (status, body) = admin
            .send(
                &app,
                post.clone(),
                &format!("/api/v1/admin/tenants/{tenant}/subscription/status"),
                Some(json!({ "status": "suspended" })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let pair = app.store.pair(tenant, pairs[0]).await.unwrap().unwrap();
        assert_eq!(
            app.store
                .intake_hold_reason(tenant, pair.shopify_connection_id)
                .await
                .unwrap(),
            Some("subscription suspended")
        );
        let held = NewInboxEvent {
            connection_id: pair.shopify_connection_id,
            webhook_id: format!("held-{}", uuid::Uuid::new_v4()),
            topic: "orders/create".into(),
            shop_domain: "s.myshopify.com".into(),
            api_version: "2026-07".into(),
            event_id: None,
            triggered_at: None,
            payload: b"{not json".to_vec(),
            status: InboxStatus::Held,
            error: Some("subscription suspended".into()),
        };
        let InboxInsert::Stored(held_id) = app.store.insert_inbox(tenant, &held).await.unwrap()
        else {
            panic!("stored twice");
        };
        let (status, page) = owner
            .send(&app, get.clone(), "/console/billing", None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            page.contains("processing is paused; webhooks are still received and stored"),
            "{page}"
        );
        let (status, page) = admin
            .form(
                &app,
                &format!("/console/admin/billing/tenants/{tenant}/status"),
                &[("status", "active")],
            )
            .await;
        assert!(
            status.is_redirection() || status == StatusCode::OK,
            "{status}: {page}"
        );
        let event = app
            .store
            .inbox_event(tenant, held_id)
            .await
            .unwrap()
            .unwrap();
        assert_ne!(
            event.status,
            InboxStatus::Held,
            "{mode:?}: released on resume"
        );
        assert_eq!(
            app.store
                .subscription(tenant)
                .await
                .unwrap()
                .unwrap()
                .status,
            SubscriptionStatus::Active
        );

        // --- Who sees billing: owners and platform admins, not viewers.
        let (status, _) = viewer
            .send(&app, get.clone(), "/api/v1/billing", None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = viewer
            .send(&app, get.clone(), "/console/billing", None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, body) = owner.send(&app, get.clone(), "/api/v1/billing", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let billing: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(billing["production_pairs_in_use"], 2);
        assert_eq!(billing["subscription"]["pairs"], 2);
        assert_eq!(billing["usage"]["transactions"]["included"], 10000 * 2 * 12);
        let (status, page) = owner
            .send(&app, get.clone(), "/console/billing", None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            page.contains("<strong>2</strong> in use of <strong>2</strong> entitled"),
            "{page}"
        );
        assert!(
            page.contains("<svg class=\"chart usage-chart\""),
            "the usage chart"
        );
        assert!(
            page.contains("href=\"/console/billing\""),
            "the navigation links billing"
        );

        // --- Invoices: issued once per period, readable, CSV, paid.
        let (status, body) = admin
            .send(
                &app,
                post.clone(),
                &format!("/api/v1/admin/tenants/{tenant}/invoices"),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let issued: Value = serde_json::from_str(&body).unwrap();
        let invoice_id = issued["id"].as_str().unwrap().to_owned();
        assert_eq!(issued["state"], "open");
        assert_eq!(issued["currency"], "USD");
        let (status, body) = admin
            .send(
                &app,
                post.clone(),
                &format!("/api/v1/admin/tenants/{tenant}/invoices"),
                Some(json!({})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::CONFLICT,
            "one invoice per period: {body}"
        );
        let (status, body) = owner
            .send(
                &app,
                get.clone(),
                &format!("/api/v1/invoices/{invoice_id}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let detail: Value = serde_json::from_str(&body).unwrap();
        let lines = detail["lines"].as_array().unwrap();
        // Two pairs from today to the end of a one-year period: two prorated-or-full lines.
        assert_eq!(lines.len(), 2, "{detail}");
        let sum: rust_decimal::Decimal = lines
            .iter()
            .map(|l| {
                l["amount"]
                    .as_str()
                    .unwrap()
                    .parse::<rust_decimal::Decimal>()
                    .unwrap()
            })
            .sum();
        assert_eq!(
            detail["invoice"]["subtotal"].as_str().unwrap(),
            sum.to_string()
        );
        let response = owner
            .client
            .get(app.url(&format!("/console/billing/invoices/{invoice_id}/csv")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let csv = response.text().await.unwrap();
        assert!(csv.starts_with("invoice,position,description"), "{csv}");
        assert_eq!(csv.lines().count(), 1 + 2 + 3, "{csv}");
        assert!(csv.contains("\"Total\""), "{csv}");
        let (status, page) = owner
            .send(
                &app,
                get.clone(),
                &format!("/console/billing/invoices/{invoice_id}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("Invoice SYN-0000"), "{page}");
        assert!(page.contains("Tax (20%)"), "{page}");
        let (status, body) = admin
            .send(
                &app,
                post.clone(),
                &format!("/api/v1/admin/tenants/{tenant}/invoices/{invoice_id}/paid"),
                Some(json!({ "reference": "  " })),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::CONFLICT,
            "a reference is required: {body}"
        );
        let (status, body) = admin
            .send(
                &app,
                post.clone(),
                &format!("/api/v1/admin/tenants/{tenant}/invoices/{invoice_id}/paid"),
                Some(json!({ "reference": "TRF-42" })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let paid: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(paid["state"], "paid");
        assert_eq!(paid["payment_reference"], "TRF-42");

        // --- The admin's overview.
        let (status, page) = admin
            .send(&app, get.clone(), "/console/admin/billing", None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("Connect Monthly"), "{page}");
        let (status, body) = admin
            .send(&app, get.clone(), "/api/v1/admin/billing", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let overview: Value = serde_json::from_str(&body).unwrap();
        let row = overview
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["tenant_id"] == tenant.to_string())
            .unwrap();
        assert_eq!(row["overage"], false);
        assert_eq!(row["production_in_use"], 2);
    }
}
