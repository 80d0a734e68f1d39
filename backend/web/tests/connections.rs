//! Connections, encrypted write-only secrets, OAuth install and pairs, through real HTTP on
//! both backends, against the built-in emulators.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeMap;

use common::{
    MODES, Mode, SHOPIFY_APP_SECRET, TestApp, captured_logs, csrf_of, spawn_app, unique_email,
};
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::Sha256;
use syncline_store::Role;
use syncline_web::sandbox::BuiltInSandbox;

async fn owner(app: &TestApp, slug: &str) -> (syncline_store::TenantId, reqwest::Client, String) {
    let tenant = app.tenant(slug).await;
    let email = unique_email("owner");
    app.user(&email, Some((tenant, Role::Owner)), false).await;
    let client = app.session(&email).await;
    let csrf = app.csrf(&client).await;
    (tenant, client, csrf)
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_sandbox_pair_registers_its_webhooks_once_and_removes_them_when_paused() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let (tenant, client, csrf) = owner(&app, "sandbox").await;
        let page = client
            .get(app.url("/console/connections"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("No connections yet"), "empty state");
        let created = client
            .post(app.url("/console/connections/sandbox"))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 200);
        let (_, connections) = json_of(
            client
                .get(app.url("/api/v1/connections"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let connections = connections.as_array().unwrap().clone();
        assert_eq!(connections.len(), 2);
        let by_kind = |kind: &str| {
            connections
                .iter()
                .find(|c| c["kind"] == kind)
                .unwrap()
                .clone()
        };
        let (shopify, d365) = (by_kind("shopify"), by_kind("d365"));
        assert!(shopify["sandbox"].as_bool().unwrap());
        assert!(
            shopify["secrets"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["set"] == true)
        );

        for connection in [&shopify, &d365] {
            let url = app.url(&format!(
                "/api/v1/connections/{}/test",
                connection["id"].as_str().unwrap()
            ));
            let (status, result) = json_of(
                client
                    .post(url)
                    .header("x-csrf-token", &csrf)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200);
            assert_eq!(result["ok"], true, "{mode:?}: {result}");
            assert!(
                result["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("Connected to"),
                "{result}"
            );
        }

        let (status, pair) = json_of(
            client
                .post(app.url("/api/v1/pairs"))
                .header("x-csrf-token", &csrf)
                .json(&json!({"name": "Main", "shopify_connection_id": shopify["id"], "d365_connection_id": d365["id"], "environment": "sandbox", "flows": ["orders", "customers"]}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{pair}");
        assert_eq!(pair["status"], "draft");
        let pair_id = pair["id"].as_str().unwrap().to_owned();
        let shop = BuiltInSandbox::shop_name(tenant);
        let callback = app.url(&format!(
            "/hooks/shopify/{}",
            shopify["id"].as_str().unwrap()
        ));
        let expected = [
            "APP_UNINSTALLED",
            "CUSTOMERS_CREATE",
            "CUSTOMERS_UPDATE",
            "ORDERS_CANCELLED",
            "ORDERS_CREATE",
            "ORDERS_UPDATED",
        ];
        for _ in 0..2 {
            let (status, active) = json_of(
                client
                    .post(app.url(&format!("/api/v1/pairs/{pair_id}/activate")))
                    .header("x-csrf-token", &csrf)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200, "{active}");
            assert_eq!(active["status"], "active");
            let at_shopify = app
                .sandbox
                .emulators()
                .shopify
                .subscriptions(&shop)
                .unwrap();
            assert_eq!(
                at_shopify.len(),
                expected.len(),
                "{mode:?}: activating twice registers each topic once: {at_shopify:?}"
            );
        }
        let (_, hooks) = json_of(
            client
                .get(app.url(&format!("/api/v1/pairs/{pair_id}/webhooks")))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let topics: Vec<&str> = hooks
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["topic"].as_str().unwrap())
            .collect();
        assert_eq!(topics, expected);
        assert!(
            hooks
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["callback_url"] == callback.as_str())
        );
        let page = client
            .get(app.url(&format!("/console/pairs/{pair_id}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("ORDERS_CREATE") && page.contains("id=\"pause\""),
            "the pair page lists the webhooks"
        );

        let (status, paused) = json_of(
            client
                .post(app.url(&format!("/api/v1/pairs/{pair_id}/pause")))
                .header("x-csrf-token", &csrf)
                .json(&json!({"reason": "maintenance window"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(paused["status"], "paused");
        assert_eq!(paused["pause_reason"], "maintenance window");
        assert!(
            app.sandbox
                .emulators()
                .shopify
                .subscriptions(&shop)
                .unwrap()
                .is_empty(),
            "{mode:?}: pausing removes the subscriptions"
        );
        let (_, hooks) = json_of(
            client
                .get(app.url(&format!("/api/v1/pairs/{pair_id}/webhooks")))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(hooks.as_array().unwrap().is_empty());
    }
}

#[tokio::test]
async fn test_connection_explains_a_wrong_shop_token_and_a_bad_client_secret() {
    let app = spawn_app(Mode::Embedded).await;
    let (tenant, client, csrf) = owner(&app, "wrong").await;
    client
        .post(app.url("/console/connections/sandbox"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let connections = app.store.list_connections(tenant).await.unwrap();
    let id_of = |kind| connections.iter().find(|c| c.kind == kind).unwrap().id;
    let (status, pair) = json_of(
        client
            .post(app.url("/api/v1/pairs"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"name": "P", "shopify_connection_id": id_of(syncline_store::ConnectionKind::Shopify), "d365_connection_id": id_of(syncline_store::ConnectionKind::D365), "environment": "sandbox", "flows": ["orders"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    let pair_id = pair["id"].as_str().unwrap().to_owned();
    let activated = client
        .post(app.url(&format!("/api/v1/pairs/{pair_id}/activate")))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(activated.status(), 200);
    for connection in app.store.list_connections(tenant).await.unwrap() {
        let field = if connection.kind == syncline_store::ConnectionKind::Shopify {
            "access_token"
        } else {
            "client_secret"
        };
        let name = syncline_web::connections::secret_name(connection.id, field);
        app.store
            .put_secret(
                tenant,
                &name,
                &SecretString::from("definitely-wrong-value".to_owned()),
            )
            .await
            .unwrap();
        let (_, result) = json_of(
            client
                .post(app.url(&format!("/api/v1/connections/{}/test", connection.id)))
                .header("x-csrf-token", &csrf)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(result["ok"], false, "{result}");
        let message = result["message"].as_str().unwrap();
        match connection.kind {
            syncline_store::ConnectionKind::Shopify => {
                assert!(message.contains("refused the access token"), "{message}")
            }
            syncline_store::ConnectionKind::D365 => assert!(
                message.contains("AADSTS7000215"),
                "names the Entra error code: {message}"
            ),
        }
    }
    let page = client
        .get(app.url("/console/connections"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("status-failed"),
        "the console shows the failed test inline"
    );
}

const TOKEN: &str = "shpat_PLAINTEXT_TOKEN_0123456789abcdef";
const API_SECRET: &str = "shpss_PLAINTEXT_API_SECRET_abcdef0123";
const CLIENT_SECRET: &str = "d365~PLAINTEXT_CLIENT_SECRET_98765";

#[tokio::test]
async fn secrets_are_write_only_and_their_plaintext_appears_nowhere() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let (tenant, client, csrf) = owner(&app, "secrets").await;
        let mut seen = String::new();

        let invalid = client
            .post(app.url("/api/v1/connections"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"kind": "shopify", "name": "x", "shop_domain": "acme.example.com"}))
            .send()
            .await
            .unwrap();
        assert_eq!(invalid.status(), 422);
        let body: Value = invalid.json().await.unwrap();
        let fields: Vec<&str> = body["error"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            ["shop_domain", "access_token", "api_secret"],
            "every problem is reported"
        );

        let shop = client
            .post(app.url("/api/v1/connections"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"kind": "shopify", "name": "Acme store", "shop_domain": "acme.myshopify.com", "api_version": "2025-07", "access_token": TOKEN, "api_secret": API_SECRET}))
            .send()
            .await
            .unwrap();
        assert_eq!(shop.status(), 201);
        let shop_text = shop.text().await.unwrap();
        seen.push_str(&shop_text);
        let shop: Value = serde_json::from_str(&shop_text).unwrap();
        let erp = client
            .post(app.url("/api/v1/connections"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"kind": "d365", "name": "Contoso", "environment_url": "https://contoso.operations.dynamics.com", "entra_tenant_id": "contoso.onmicrosoft.com", "client_id": uuid::Uuid::new_v4(), "client_secret": CLIENT_SECRET, "data_area_id": "USMF"}))
            .send()
            .await
            .unwrap();
        assert_eq!(erp.status(), 201);
        seen.push_str(&erp.text().await.unwrap());
        let id = shop["id"].as_str().unwrap();
        let before = shop["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["field"] == "access_token")
            .unwrap()["updated_at"]
            .clone();

        // Keep secrets by omitting them; replace one by sending it.
        let kept = client
            .patch(app.url(&format!("/api/v1/connections/{id}")))
            .header("x-csrf-token", &csrf)
            .json(&json!({"name": "Acme", "shop_domain": "acme.myshopify.com"}))
            .send()
            .await
            .unwrap();
        assert_eq!(kept.status(), 200);
        let kept: Value = kept.json().await.unwrap();
        assert!(
            kept["secrets"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["set"] == true)
        );
        let replaced = client
            .patch(app.url(&format!("/api/v1/connections/{id}")))
            .header("x-csrf-token", &csrf)
            .json(&json!({"name": "Acme", "shop_domain": "acme.myshopify.com", "access_token": format!("{TOKEN}-v2")}))
            .send()
            .await
            .unwrap();
        let replaced: Value = replaced.json().await.unwrap();
        let after = replaced["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["field"] == "access_token")
            .unwrap()["updated_at"]
            .clone();
        assert_ne!(before, after, "replacing a secret updates its change date");
        seen.push_str(&replaced.to_string());

        for path in [
            "/api/v1/connections".to_owned(),
            format!("/api/v1/connections/{id}"),
            "/console/connections".to_owned(),
            format!("/console/connections/{id}"),
            "/console/settings/audit".to_owned(),
        ] {
            seen.push_str(
                &client
                    .get(app.url(&path))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap(),
            );
        }
        // A console form that fails validation does not echo the secret typed into it.
        let page = client
            .get(app.url("/console/connections/new?kind=shopify"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let form_csrf = csrf_of(&page);
        let rejected = client
            .post(app.url("/console/connections"))
            .form(&[
                ("csrf", form_csrf.as_str()),
                ("kind", "shopify"),
                ("name", "Bad"),
                ("shop_domain", "nope"),
                ("access_token", TOKEN),
                ("api_secret", API_SECRET),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(rejected.status(), 422);
        let rejected = rejected.text().await.unwrap();
        assert!(
            rejected.contains("data-field=\"shop_domain\""),
            "field-level error"
        );
        seen.push_str(&rejected);

        let secret_name =
            syncline_web::connections::secret_name(id.parse().unwrap(), "access_token");
        let revealed = app
            .store
            .reveal_secret(tenant, &secret_name, "test", "checking the stored value")
            .await
            .unwrap();
        assert_eq!(
            secrecy::ExposeSecret::expose_secret(&revealed),
            format!("{TOKEN}-v2"),
            "the secret round-trips"
        );

        let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
        let database = raw_database_text(&app).await;
        for secret in [TOKEN, API_SECRET, CLIENT_SECRET] {
            assert!(
                !seen.contains(secret),
                "{mode:?}: a secret reached a response or page"
            );
            assert!(
                !logs.contains(secret),
                "{mode:?}: a secret reached the logs"
            );
            assert!(
                !database.contains(secret),
                "{mode:?}: a secret is stored in plain text"
            );
        }
        assert!(
            database.contains("acme.myshopify.com"),
            "{mode:?}: the dump really holds the data"
        );
    }
}

/// Everything the database holds, as text: the SQLite files' raw bytes, or every PostgreSQL
/// table cast to text.
async fn raw_database_text(app: &TestApp) -> String {
    match app.mode {
        Mode::Embedded => {
            let path = app.db_url.trim_start_matches("sqlite://");
            let mut bytes = Vec::new();
            for suffix in ["", "-wal", "-shm"] {
                bytes.extend(std::fs::read(format!("{path}{suffix}")).unwrap_or_default());
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Mode::Cluster => {
            let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            let mut dump = String::new();
            for table in tables {
                let rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT t::text FROM \"{table}\" t"))
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                dump.push_str(&rows.join("\n"));
            }
            pool.close().await;
            dump
        }
    }
}

fn as_refs(v: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    v
}

fn signed(params: &[(&'static str, String)], secret: &str) -> Vec<(String, String)> {
    let sorted: BTreeMap<&str, &str> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let message = sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    let mut out: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    out.push(("hmac".into(), hex::encode(mac.finalize().into_bytes())));
    out
}

#[tokio::test]
async fn the_oauth_callback_rejects_bad_signatures_foreign_or_reused_state_and_foreign_shops() {
    let app = spawn_app(Mode::Embedded).await;
    let (_, client, _) = owner(&app, "oauth").await;
    let bad_shop = client
        .get(app.url("/oauth/shopify/install?shop=acme.example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        bad_shop.status(),
        422,
        "install refuses a non-myshopify domain"
    );
    let install = client
        .get(app.url("/oauth/shopify/install?shop=acme.myshopify.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(install.status(), 303);
    let location = url::Url::parse(install.headers()["location"].to_str().unwrap()).unwrap();
    let emulator = url::Url::parse(app.sandbox.emulators().shopify.base_url()).unwrap();
    assert_eq!(
        location.host_str(),
        emulator.host_str(),
        "the test points Shopify's consent screen at the emulator"
    );
    assert_eq!(location.path(), "/shops/acme/admin/oauth/authorize");
    let query: BTreeMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], "test-app-client-id");
    assert!(query["scope"].contains("read_orders"));
    assert_eq!(query["redirect_uri"], app.url("/oauth/shopify/callback"));
    let state = query["state"].clone();

    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let callback = |params: Vec<(String, String)>| {
        let anonymous = anonymous.clone();
        let url = app.url("/oauth/shopify/callback");
        async move {
            let response = anonymous.get(url).query(&params).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let base = |shop: &'static str, state: String| {
        vec![
            ("code", "auth-code".to_owned()),
            ("shop", shop.to_owned()),
            ("state", state),
            ("timestamp", timestamp.clone()),
        ]
    };

    let mut tampered = signed(
        &as_refs(base("acme.myshopify.com", state.clone())),
        SHOPIFY_APP_SECRET,
    );
    tampered[0].1 = "another-code".into();
    let (status, text) = callback(tampered).await;
    assert_eq!(status, 400);
    assert!(text.contains("signature is invalid"), "{text}");
    let (status, text) = callback(signed(
        &as_refs(base("acme.myshopify.com", state.clone())),
        "not-the-app-secret",
    ))
    .await;
    assert_eq!((status, text.contains("signature is invalid")), (400, true));

    let (status, text) = callback(signed(
        &as_refs(base("evil.example.com", state.clone())),
        SHOPIFY_APP_SECRET,
    ))
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("not a *.myshopify.com domain"), "{text}");

    let (status, text) = callback(signed(
        &as_refs(base("acme.myshopify.com", "a-state-nobody-issued".into())),
        SHOPIFY_APP_SECRET,
    ))
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("expired or was already used"), "{text}");

    // A valid state presented for another shop is refused and used up.
    let (status, text) = callback(signed(
        &as_refs(base("other-shop.myshopify.com", state.clone())),
        SHOPIFY_APP_SECRET,
    ))
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("does not match"), "{text}");
    let (status, text) = callback(signed(
        &as_refs(base("acme.myshopify.com", state.clone())),
        SHOPIFY_APP_SECRET,
    ))
    .await;
    assert_eq!(status, 400, "a state works once");
    assert!(text.contains("expired or was already used"), "{text}");
}

#[tokio::test]
async fn an_oauth_install_completes_against_the_emulator_and_its_callback_works_once() {
    let app = spawn_app(Mode::Embedded).await;
    let (tenant, client, csrf) = owner(&app, "install").await;
    let shopify = &app.sandbox.emulators().shopify;
    shopify
        .create_shop(syncline_sim::shopify::ShopSpec {
            name: "oauth-shop".into(),
            ..Default::default()
        })
        .unwrap();
    shopify
        .add_app(
            "oauth-shop",
            syncline_sim::shopify::AppSpec {
                name: "test-app-client-id".into(),
                api_secret: Some(SHOPIFY_APP_SECRET.into()),
                ..Default::default()
            },
        )
        .unwrap();

    let install = client
        .get(app.url("/oauth/shopify/install?shop=oauth-shop.myshopify.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(install.status(), 303);
    let consent = install.headers()["location"].to_str().unwrap().to_owned();
    let approved = client.get(&consent).send().await.unwrap();
    assert_eq!(
        approved.status(),
        302,
        "the emulated consent screen approves"
    );
    let callback = approved.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        callback.starts_with(&app.url("/oauth/shopify/callback?")),
        "{callback}"
    );

    let finished = client.get(&callback).send().await.unwrap();
    assert_eq!(finished.status(), 303, "{}", finished.text().await.unwrap());
    let connections = app.store.list_connections(tenant).await.unwrap();
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].settings["installed_via"], "oauth");
    assert_eq!(
        connections[0].settings["shop_domain"],
        "oauth-shop.myshopify.com"
    );
    let (_, result) = json_of(
        client
            .post(app.url(&format!("/api/v1/connections/{}/test", connections[0].id)))
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(result["ok"], true, "the exchanged token works: {result}");

    let again = client.get(&callback).send().await.unwrap();
    assert_eq!(again.status(), 400, "the callback works once");
    assert_eq!(
        app.store.list_connections(tenant).await.unwrap().len(),
        1,
        "no second connection"
    );
}
