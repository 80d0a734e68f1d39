//! Tenants, accounts and their security through real HTTP, on both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeMap;

use common::{
    MODES, Mode, PASSWORD, TestApp, browser, captured_logs, csrf_of, link_in, mail_count,
    spawn_app, spawn_app_with, unique_email, wait_for_mail,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use syncline_store::{Role, TenantId};
use syncline_web::auth::throttle::ThrottlePolicy;

async fn api(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let mut request = client.request(method, url).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_platform_admin_onboards_a_tenant_whose_owner_invites_a_teammate_by_email() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let admin_email = unique_email("admin");
        let admin_password = "a very long admin password";
        syncline_web::accounts::bootstrap_admin(&app.store, &admin_email, admin_password)
            .await
            .unwrap();
        let again = syncline_web::accounts::bootstrap_admin(
            &app.store,
            &unique_email("second"),
            admin_password,
        )
        .await;
        assert!(again.is_err(), "bootstrap runs once");

        // The admin signs in and lands on the tenant list.
        let (admin, response) = app.login(&admin_email, admin_password).await;
        assert_eq!(response.status(), 303);
        let landing = admin.get(app.url("/console")).send().await.unwrap();
        assert_eq!(landing.headers()["location"], "/console/admin/tenants");
        let page = admin
            .get(app.url("/console/admin/tenants"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("No tenants yet"), "empty state: {page}");

        // A form with a missing field gets field-level errors, not a server error.
        let csrf = csrf_of(&page);
        let bad = admin
            .post(app.url("/console/admin/tenants"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", ""),
                ("owner_email", "not-an-email"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 422);
        let bad = bad.text().await.unwrap();
        assert!(
            bad.contains("data-field=\"name\"") && bad.contains("data-field=\"owner_email\""),
            "{bad}"
        );

        let owner_email = unique_email("owner");
        let created = admin
            .post(app.url("/console/admin/tenants"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", "Acme Trading GmbH"),
                ("slug", ""),
                ("owner_email", owner_email.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 200);
        assert!(created.text().await.unwrap().contains("emailed the owner"));

        // The invitation really went through SMTP.
        let mail = wait_for_mail(&owner_email).await;
        assert!(
            mail.contains("Acme Trading GmbH") && mail.contains("owner"),
            "{mail}"
        );
        let link = link_in(&mail, &format!("{}/invite/", app.base));
        let token = link.rsplit('/').next().unwrap().to_owned();

        let guest = browser();
        let invitation = guest.get(&link).send().await.unwrap();
        assert_eq!(invitation.status(), 200);
        let page = invitation.text().await.unwrap();
        assert!(
            page.contains("Join Acme Trading GmbH") && page.contains(&owner_email),
            "{page}"
        );
        let csrf = csrf_of(&page);
        let weak = guest
            .post(&link)
            .form(&[
                ("csrf", csrf.as_str()),
                ("display_name", "Olga"),
                ("password", "short"),
                ("confirm", "short"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            weak.status(),
            422,
            "a weak password is refused and the link stays usable"
        );
        let accepted = guest
            .post(&link)
            .form(&[
                ("csrf", csrf.as_str()),
                ("display_name", "Olga"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(accepted.status(), 303);
        let reused = guest
            .post(&link)
            .form(&[
                ("csrf", csrf.as_str()),
                ("display_name", "Mallory"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(reused.status(), 400, "the link works once");
        assert!(reused.text().await.unwrap().contains("already used"));

        // The owner signs in, invites an operator, who joins and has exactly that role.
        let owner = app.session(&owner_email).await;
        let me: Value = owner
            .get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["role"], "owner");
        assert_eq!(me["tenant"]["name"], "Acme Trading GmbH");
        let members_page = owner
            .get(app.url("/console/settings/members"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = csrf_of(&members_page);
        let teammate = unique_email("operator");
        let sent = owner
            .post(app.url("/console/settings/invitations"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", teammate.as_str()),
                ("role", "operator"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), 200);
        assert!(
            sent.text()
                .await
                .unwrap()
                .contains(&format!("Invitation emailed to {teammate}"))
        );
        let mail = wait_for_mail(&teammate).await;
        let teammate_link = link_in(&mail, &format!("{}/invite/", app.base));
        let guest = browser();
        let csrf = csrf_of(
            &guest
                .get(&teammate_link)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
        let joined = guest
            .post(&teammate_link)
            .form(&[
                ("csrf", csrf.as_str()),
                ("display_name", "Otto"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(joined.status(), 303);
        let operator = app.session(&teammate).await;
        let me: Value = operator
            .get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["role"], "operator", "{mode:?}");
        assert_eq!(mail_count(&teammate), 1);

        // Passwords are stored as argon2id; none of the secrets reached the logs.
        let (_, hash) = app.store.user_by_email(&teammate).await.unwrap().unwrap();
        assert!(hash.unwrap().starts_with("$argon2id$v=19$"), "argon2id");
        let key = app.api_key(&owner, "viewer").await;
        let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
        assert!(logs.contains("request"), "logs were captured");
        for secret in [PASSWORD, admin_password, token.as_str(), key.as_str()] {
            assert!(
                !logs.contains(secret),
                "{mode:?}: a secret appeared in the logs"
            );
        }

        // The owner sees the security trail.
        let audit: Value = owner
            .get(app.url("/api/v1/audit-log"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let actions: Vec<&str> = audit
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        for expected in [
            "tenant.create",
            "invitation.create",
            "invitation.accept",
            "login.success",
            "api_key.create",
        ] {
            assert!(
                actions.contains(&expected),
                "{mode:?}: audit lacks {expected}: {actions:?}"
            );
        }
    }
}

struct Team {
    tenant: TenantId,
    emails: BTreeMap<Role, String>,
    keys: BTreeMap<Role, String>,
    viewer_id: syncline_store::UserId,
}

async fn team(app: &TestApp, slug: &str) -> Team {
    let tenant = app.tenant(slug).await;
    let mut emails = BTreeMap::new();
    let mut viewer_id = None;
    for role in Role::ALL {
        let email = unique_email(role.as_str());
        let id = app.user(&email, Some((tenant, role)), false).await;
        if role == Role::Viewer {
            viewer_id = Some(id);
        }
        emails.insert(role, email);
    }
    let owner = app.session(&emails[&Role::Owner]).await;
    let mut keys = BTreeMap::new();
    for role in Role::ALL {
        keys.insert(role, app.api_key(&owner, role.as_str()).await);
    }
    Team {
        tenant,
        emails,
        keys,
        viewer_id: viewer_id.unwrap(),
    }
}

#[tokio::test]
async fn each_role_gets_exactly_what_the_role_table_allows() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let team = team(&app, "roles").await;
        let client = reqwest::Client::new();
        let viewer = team.viewer_id;
        for role in Role::ALL {
            let key = &team.keys[&role];
            let can_manage = role >= Role::Admin;
            let expect =
                |allowed: bool, ok: StatusCode| if allowed { ok } else { StatusCode::FORBIDDEN };
            let checks: Vec<(&str, reqwest::Method, String, Option<Value>, StatusCode)> = vec![
                (
                    "list members",
                    reqwest::Method::GET,
                    app.url("/api/v1/members"),
                    None,
                    StatusCode::OK,
                ),
                (
                    "list keys",
                    reqwest::Method::GET,
                    app.url("/api/v1/api-keys"),
                    None,
                    StatusCode::OK,
                ),
                (
                    "invite",
                    reqwest::Method::POST,
                    app.url("/api/v1/invitations"),
                    Some(json!({"email": unique_email("x"), "role": "viewer"})),
                    expect(can_manage, StatusCode::CREATED),
                ),
                (
                    "create key",
                    reqwest::Method::POST,
                    app.url("/api/v1/api-keys"),
                    Some(json!({"name": "k", "role": "viewer"})),
                    expect(can_manage, StatusCode::CREATED),
                ),
                (
                    "change role",
                    reqwest::Method::PATCH,
                    app.url(&format!("/api/v1/members/{viewer}")),
                    Some(json!({"role": "viewer"})),
                    expect(can_manage, StatusCode::NO_CONTENT),
                ),
                (
                    "audit log",
                    reqwest::Method::GET,
                    app.url("/api/v1/audit-log"),
                    None,
                    expect(role == Role::Owner, StatusCode::OK),
                ),
                (
                    "grant owner",
                    reqwest::Method::POST,
                    app.url("/api/v1/invitations"),
                    Some(json!({"email": unique_email("y"), "role": "owner"})),
                    expect(role == Role::Owner, StatusCode::CREATED),
                ),
                (
                    "list runs",
                    reqwest::Method::GET,
                    app.url("/api/v1/runs"),
                    None,
                    StatusCode::OK,
                ),
                (
                    "replay runs",
                    reqwest::Method::POST,
                    app.url("/api/v1/runs/replay"),
                    Some(json!({"status": "dead"})),
                    expect(role >= Role::Operator, StatusCode::OK),
                ),
                (
                    "platform tenants",
                    reqwest::Method::GET,
                    app.url("/api/v1/admin/tenants"),
                    None,
                    StatusCode::FORBIDDEN,
                ),
            ];
            for (what, method, url, body, expected) in checks {
                let (status, text) = api(&client, method, url, key, body).await;
                assert_eq!(status, expected, "{mode:?}: {role} → {what}: {text}");
            }
            // The console follows the same table.
            let session = app.session(&team.emails[&role]).await;
            let audit = session
                .get(app.url("/console/settings/audit"))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(
                audit,
                if role == Role::Owner { 200 } else { 403 },
                "{mode:?}: {role} audit page"
            );
        }
        // The last owner cannot be demoted.
        let owner_id = app
            .store
            .user_by_email(&team.emails[&Role::Owner])
            .await
            .unwrap()
            .unwrap()
            .0
            .id;
        let (status, _) = api(
            &client,
            reqwest::Method::PATCH,
            app.url(&format!("/api/v1/members/{owner_id}")),
            &team.keys[&Role::Owner],
            Some(json!({"role": "admin"})),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            app.store.membership(team.tenant, owner_id).await.unwrap(),
            Some(Role::Owner)
        );
        // A platform admin is not a tenant role but sees every tenant.
        let admin_email = unique_email("platform");
        app.user(&admin_email, None, true).await;
        let admin = app.session(&admin_email).await;
        assert_eq!(
            admin
                .get(app.url("/api/v1/admin/tenants"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(
            admin
                .get(app.url("/api/v1/members"))
                .send()
                .await
                .unwrap()
                .status(),
            403,
            "no tenant selected"
        );
    }
}

/// Objects of tenant B to substitute for each path parameter name.
async fn fixtures_for(app: &TestApp, b: &Team, b_key_id: &str) -> BTreeMap<&'static str, String> {
    use syncline_store::{ConnectionKind, NewConnection, NewPair};
    let connection = |kind, name: &str| NewConnection {
        kind,
        name: name.into(),
        sandbox: false,
        settings: json!({"shop_domain": "b-shop.myshopify.com"}),
    };
    let shop = app
        .store
        .create_connection(b.tenant, &connection(ConnectionKind::Shopify, "B shop"))
        .await
        .unwrap();
    let erp = app
        .store
        .create_connection(b.tenant, &connection(ConnectionKind::D365, "B erp"))
        .await
        .unwrap();
    let pair = app
        .store
        .create_pair(
            b.tenant,
            &NewPair {
                name: "B pair".into(),
                shopify_connection_id: shop.id,
                d365_connection_id: erp.id,
                environment: "sandbox".into(),
                flows: vec!["orders".into()],
            },
        )
        .await
        .unwrap();
    let run = dead_run(app, b.tenant, pair.id, shop.id).await;
    let rule = app
        .store
        .ensure_alert_rules(b.tenant, pair.id)
        .await
        .unwrap()
        .remove(0);
    let incident = app
        .store
        .open_incident(
            b.tenant,
            &syncline_store::NewIncident {
                rule_id: rule.id,
                pair_id: pair.id,
                kind: rule.kind,
                summary: "B pair: run dead-lettered".into(),
                cause: None,
                value: 1.0,
                runs_url: "/console/runs".into(),
            },
        )
        .await
        .unwrap()
        .unwrap();
    let channel = app
        .store
        .create_alert_channel(
            b.tenant,
            &syncline_store::NewChannel {
                name: "B channel".into(),
                kind: syncline_store::ChannelKind::Email,
                settings: json!({"addresses": ["b-ops@example.test"]}),
                enabled: true,
            },
        )
        .await
        .unwrap();
    // A subscription and an invoice of B's, for the billing routes.
    let plan = app
        .store
        .create_plan(&syncline_store::NewPlan {
            code: "b-plan".into(),
            name: "B plan".into(),
            price_per_pair: rust_decimal::Decimal::new(59900, 2),
            currency: "USD".into(),
            interval: syncline_core::billing::Interval::Month,
            included_transactions: 100,
            included_api_calls: 1000,
            sandbox_pairs: 2,
            active: true,
        })
        .await
        .unwrap();
    let today = chrono::Utc::now().date_naive();
    app.store
        .set_subscription(
            b.tenant,
            plan.id,
            1,
            today,
            rust_decimal::Decimal::ZERO,
            "test",
        )
        .await
        .unwrap();
    let invoice = syncline_runner::billing::issue_invoice(&app.store, b.tenant, today, today)
        .await
        .unwrap();
    BTreeMap::from([
        ("invoice_id", invoice.id.to_string()),
        ("rule_id", rule.id.to_string()),
        ("incident_id", incident.id.to_string()),
        ("channel_id", channel.id.to_string()),
        ("user_id", b.viewer_id.to_string()),
        ("key_id", b_key_id.to_owned()),
        ("connection_id", shop.id.to_string()),
        ("pair_id", pair.id.to_string()),
        ("run_id", run.to_string()),
        ("flow", "orders".to_owned()),
    ])
}

/// A run of the pair that gave up (a dead letter, so it could be replayed).
async fn dead_run(
    app: &TestApp,
    tenant: TenantId,
    pair: syncline_store::PairId,
    shop: syncline_store::ConnectionId,
) -> syncline_store::RunId {
    use syncline_store::{InboxInsert, InboxStatus, NewInboxEvent, NewRun, RunOutcome, RunStatus};
    let event = NewInboxEvent {
        connection_id: shop,
        webhook_id: "b-webhook".into(),
        topic: "orders/create".into(),
        shop_domain: "b-shop.myshopify.com".into(),
        api_version: "2026-07".into(),
        event_id: None,
        triggered_at: None,
        payload: b"{}".to_vec(),
        status: InboxStatus::Received,
        error: None,
    };
    let inbox = match app.store.insert_inbox(tenant, &event).await.unwrap() {
        InboxInsert::Stored(id) | InboxInsert::Duplicate(id) => id,
    };
    let (run, _) = app
        .store
        .create_run(
            tenant,
            &NewRun {
                pair_id: pair,
                inbox_id: inbox,
                flow: "orders".into(),
                shopify_ref: Some("#B-1001".into()),
                input_snapshot: None,
            },
        )
        .await
        .unwrap();
    app.store
        .claim_run(tenant, run.id, chrono::Duration::seconds(300))
        .await
        .unwrap()
        .unwrap();
    app.store
        .finish_run(
            tenant,
            run.id,
            &RunOutcome {
                status: RunStatus::Dead,
                next_attempt_at: None,
                error: Some("unknown SKU".into()),
                error_class: Some("permanent".into()),
                d365_ref: None,
                output_snapshot: None,
                mapping_version: None,
                input_snapshot: None,
            },
        )
        .await
        .unwrap();
    run.id
}

#[tokio::test]
async fn another_tenants_objects_are_404_on_every_route_and_never_listed() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let a = team(&app, "tenant-a").await;
        let b = team(&app, "tenant-b").await;
        let client = reqwest::Client::new();
        let b_keys: Value = client
            .get(app.url("/api/v1/api-keys"))
            .bearer_auth(&b.keys[&Role::Owner])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let b_key_id = b_keys[0]["id"].as_str().unwrap().to_owned();
        let fixtures = fixtures_for(&app, &b, &b_key_id).await;
        let b_secrets: Vec<String> = b
            .emails
            .values()
            .cloned()
            .chain(fixtures.values().cloned())
            .chain([
                b_key_id.clone(),
                b.viewer_id.to_string(),
                b.tenant.to_string(),
            ])
            .collect();

        let document: Value = client
            .get(app.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let a_owner_session = app.session(&a.emails[&Role::Owner]).await;
        let a_csrf = app.csrf(&a_owner_session).await;
        let mut walked = 0;
        for (path, operations) in document["paths"].as_object().unwrap() {
            for (method, operation) in operations.as_object().unwrap() {
                if operation["tags"]
                    .as_array()
                    .is_some_and(|tags| tags.contains(&json!("platform")))
                {
                    continue; // Platform routes are not tenant-scoped; they answer 403 to tenant users.
                }
                let method: reqwest::Method = method.to_uppercase().parse().unwrap();
                let mut url = path.clone();
                let mut has_params = false;
                for param in operation["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                {
                    let name = param["name"].as_str().unwrap();
                    let value = fixtures.get(name).unwrap_or_else(|| {
                        panic!("no tenant-B fixture for path parameter {name} of {path}: add one")
                    });
                    url = url.replace(&format!("{{{name}}}"), value);
                    has_params = true;
                }
                let body = Some(json!({"role": "viewer", "name": "x", "email": unique_email("z")}));
                // As tenant A's owner, by API key and by session.
                let (status, text) = api(
                    &client,
                    method.clone(),
                    app.url(&url),
                    &a.keys[&Role::Owner],
                    body.clone(),
                )
                .await;
                let by_session = a_owner_session
                    .request(method.clone(), app.url(&url))
                    .header("x-csrf-token", &a_csrf)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let session_status = by_session.status();
                let session_text = by_session.text().await.unwrap();
                if has_params {
                    assert_eq!(
                        status,
                        StatusCode::NOT_FOUND,
                        "{mode:?}: {method} {path} with B's object by key: {text}"
                    );
                    assert_eq!(
                        session_status,
                        StatusCode::NOT_FOUND,
                        "{mode:?}: {method} {path} with B's object by session"
                    );
                } else {
                    for secret in &b_secrets {
                        assert!(
                            !text.contains(secret.as_str())
                                && !session_text.contains(secret.as_str()),
                            "{mode:?}: {method} {path} leaked B's {secret}"
                        );
                    }
                }
                walked += 1;
            }
        }
        assert!(walked >= 8, "walked {walked} operations");

        // Console pages that take an object id, from the route table itself.
        for (path, _) in syncline_web::console::route_table() {
            if !path.contains('{')
                || path.starts_with("/console/admin/")
                || path.contains("{token}")
            {
                continue; // Platform pages and secret links are not tenant objects.
            }
            let mut url = path.to_owned();
            for (name, value) in &fixtures {
                url = url.replace(&format!("{{{name}}}"), value);
            }
            assert!(
                !url.contains('{'),
                "no tenant-B fixture for {path}: add one"
            );
            let mut answered = 0;
            for method in [reqwest::Method::GET, reqwest::Method::POST] {
                let response = a_owner_session
                    .request(method.clone(), app.url(&url))
                    .form(&[("csrf", a_csrf.as_str()), ("role", "viewer"), ("name", "x")])
                    .send()
                    .await
                    .unwrap();
                if response.status() == 405 {
                    continue; // The page does not take this method.
                }
                assert_eq!(
                    response.status(),
                    404,
                    "{mode:?}: {method} {path} with B's object"
                );
                answered += 1;
            }
            assert!(answered > 0, "{path} answered neither GET nor POST");
        }
        // Tenant B is untouched: its pair is still a draft, its viewer still a viewer, its key works.
        let b_pair = app
            .store
            .pair(b.tenant, fixtures["pair_id"].parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (b_pair.status, b_pair.name.as_str()),
            (syncline_store::PairStatus::Draft, "B pair")
        );
        assert_eq!(app.store.list_connections(b.tenant).await.unwrap().len(), 2);
        let b_run = app
            .store
            .run(b.tenant, fixtures["run_id"].parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            b_run.status,
            syncline_store::RunStatus::Dead,
            "{mode:?}: B's run not replayed"
        );
        assert_eq!(
            app.store.membership(b.tenant, b.viewer_id).await.unwrap(),
            Some(Role::Viewer)
        );
        let (status, _) = api(
            &client,
            reqwest::Method::GET,
            app.url("/api/v1/me"),
            &b.keys[&Role::Viewer],
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        // Selecting B's tenant in A's session is a 404 too.
        let response = a_owner_session
            .post(app.url("/console/tenant"))
            .form(&[
                ("csrf", a_csrf.as_str()),
                ("tenant_id", &b.tenant.to_string()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
    }
}

fn cookie_header(value: &str) -> String {
    format!("syncline_session={value}")
}

#[tokio::test]
async fn forged_expired_and_revoked_credentials_and_missing_csrf_tokens_are_rejected() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let tenant = app.tenant("sec").await;
        let email = unique_email("owner");
        app.user(&email, Some((tenant, Role::Owner)), false).await;
        let (client, response) = app.login(&email, PASSWORD).await;
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("syncline_session="))
            .unwrap();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        let token = cookie
            .trim_start_matches("syncline_session=")
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let plain = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let me = |value: String| {
            let plain = plain.clone();
            let url = app.url("/api/v1/me");
            async move {
                plain
                    .get(url)
                    .header("cookie", cookie_header(&value))
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(me(token.clone()).await, 200, "the real cookie works");

        // Forged: signature changed.
        let mut forged = token.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(me(forged.clone()).await, 401);
        let page = plain
            .get(app.url("/console"))
            .header("cookie", cookie_header(&forged))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 303);
        assert!(
            page.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/login")
        );
        // Signed with another key.
        let other = syncline_web::auth::session::SessionKeys::new(
            b"another-secret-another-secret-another".to_vec(),
            false,
        );
        let session = app
            .store
            .create_session(
                app.store.user_by_email(&email).await.unwrap().unwrap().0.id,
                Some(tenant),
                chrono::Utc::now() + chrono::Duration::hours(1),
            )
            .await
            .unwrap();
        assert_eq!(
            me(other.issue(session.id, session.user_id, session.expires_at)).await,
            401
        );
        // Expired, though correctly signed.
        let keys =
            syncline_web::auth::session::SessionKeys::new(common::SESSION_SECRET.to_vec(), false);
        assert_eq!(
            me(keys.issue(
                session.id,
                session.user_id,
                chrono::Utc::now() - chrono::Duration::seconds(5)
            ))
            .await,
            401
        );
        assert_eq!(
            me(keys.issue(session.id, session.user_id, session.expires_at)).await,
            200,
            "control: a fresh one works"
        );

        // CSRF: forms and cookie-authenticated API calls need the token.
        let csrf = app.csrf(&client).await;
        let invitee = unique_email("csrf");
        for form in [
            vec![("email", invitee.as_str()), ("role", "viewer")],
            vec![
                ("email", invitee.as_str()),
                ("role", "viewer"),
                ("csrf", "forged"),
            ],
        ] {
            let response = client
                .post(app.url("/console/settings/invitations"))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 403);
        }
        let response = client
            .post(app.url("/api/v1/api-keys"))
            .json(&json!({"name": "n", "role": "viewer"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            403,
            "cookie-authenticated API writes need x-csrf-token"
        );
        assert!(
            app.store
                .pending_invitations(tenant)
                .await
                .unwrap()
                .is_empty(),
            "nothing was created"
        );
        let login_without_cookie = plain
            .post(app.url("/login"))
            .form(&[
                ("email", email.as_str()),
                ("password", PASSWORD),
                ("csrf", "x"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(login_without_cookie.status(), 403);

        // API keys: forged, then revoked.
        let key = app.api_key(&client, "viewer").await;
        let (status, _) = api(
            &plain,
            reqwest::Method::GET,
            app.url("/api/v1/me"),
            &format!("{key}x"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = api(
            &plain,
            reqwest::Method::GET,
            app.url("/api/v1/me"),
            &key,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let keys_list: Value = client
            .get(app.url("/api/v1/api-keys"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key_id = keys_list[0]["id"].as_str().unwrap();
        assert!(
            keys_list[0]["last_used_at"].is_string(),
            "last use is recorded"
        );
        assert!(
            !keys_list.to_string().contains(&key),
            "the secret is never listed"
        );
        let revoked = client
            .delete(app.url(&format!("/api/v1/api-keys/{key_id}")))
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), 204);
        let (status, _) = api(
            &plain,
            reqwest::Method::GET,
            app.url("/api/v1/me"),
            &key,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // Revoked session: logout ends it server-side; the old cookie stops working.
        let logout = client
            .post(app.url("/logout"))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(logout.status(), 303);
        assert_eq!(
            me(token.clone()).await,
            401,
            "{mode:?}: a logged-out cookie is dead"
        );

        // A password change ends the user's other sessions.
        let first = app.session(&email).await;
        let second = app.session(&email).await;
        let csrf = app.csrf(&first).await;
        let changed = first
            .post(app.url("/console/account/password"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("current", PASSWORD),
                ("password", "an entirely new passphrase"),
                ("confirm", "an entirely new passphrase"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), 303);
        assert_eq!(
            second
                .get(app.url("/api/v1/me"))
                .send()
                .await
                .unwrap()
                .status(),
            401
        );
    }
}

#[tokio::test]
async fn repeated_failures_are_slowed_then_refused_without_revealing_which_emails_exist() {
    for mode in MODES {
        let policy = ThrottlePolicy {
            window: std::time::Duration::from_secs(60),
            per_account: 3,
            per_address: 50,
            slow_after: 1,
        };
        let app = spawn_app_with(mode, policy).await;
        let tenant = app.tenant("bf").await;
        let email = unique_email("victim");
        app.user(&email, Some((tenant, Role::Viewer)), false).await;

        let (_, unknown) = app
            .login(&unique_email("nobody"), "whatever password")
            .await;
        let unknown_status = unknown.status();
        let unknown_text = unknown.text().await.unwrap();
        let (_, wrong) = app.login(&email, "wrong password here").await;
        assert_eq!(wrong.status(), unknown_status);
        let wrong_text = wrong.text().await.unwrap();
        assert!(
            wrong_text.contains("Wrong email or password.")
                && unknown_text.contains("Wrong email or password.")
        );
        for _ in 0..2 {
            let (_, response) = app.login(&email, "wrong password here").await;
            assert_eq!(response.status(), 401);
        }
        let (_, refused) = app.login(&email, PASSWORD).await;
        assert_eq!(
            refused.status(),
            429,
            "{mode:?}: even the right password waits once the limit is hit"
        );
        let retry: u64 = refused.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        let audit = app.store.tenant_audit_log(tenant, 50).await.unwrap();
        assert!(audit.iter().filter(|e| e.action == "login.failure").count() >= 3);
    }
}

#[tokio::test]
async fn the_login_throttle_is_shared_by_every_web_process_through_redis() {
    let redis = common::env("SYNCLINE_TEST_REDIS_URL");
    let namespace = format!("shared-{}", uuid::Uuid::new_v4());
    let policy = ThrottlePolicy {
        window: std::time::Duration::from_secs(60),
        per_account: 2,
        per_address: 100,
        slow_after: 5,
    };
    let make = || {
        syncline_web::auth::throttle::LoginThrottle::new(
            Box::new(syncline_web::auth::throttle::RedisCounter::new(&redis).unwrap()),
            policy,
        )
        .namespaced(&namespace)
    };
    let (one, two) = (make(), make());
    one.failed("pat@example.test", "10.0.0.1").await;
    two.failed("pat@example.test", "10.0.0.2").await;
    assert!(matches!(
        one.check("pat@example.test", "10.0.0.3").await,
        syncline_web::auth::throttle::Verdict::Refuse(_)
    ));
    assert!(matches!(
        two.check("pat@example.test", "10.0.0.3").await,
        syncline_web::auth::throttle::Verdict::Refuse(_)
    ));
}

#[tokio::test]
async fn a_suspended_tenant_cannot_sign_in_or_use_keys_until_reactivated() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let tenant = app.tenant("sus").await;
        let owner_email = unique_email("owner");
        app.user(&owner_email, Some((tenant, Role::Owner)), false)
            .await;
        let owner = app.session(&owner_email).await;
        let key = app.api_key(&owner, "viewer").await;
        let admin_email = unique_email("padmin");
        app.user(&admin_email, None, true).await;
        let admin = app.session(&admin_email).await;
        let admin_csrf = app.csrf(&admin).await;

        let suspended = admin
            .post(app.url(&format!("/api/v1/admin/tenants/{tenant}/suspend")))
            .header("x-csrf-token", &admin_csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(suspended.status(), 204);
        let (_, refused) = app.login(&owner_email, PASSWORD).await;
        assert_eq!(refused.status(), 403);
        assert!(refused.text().await.unwrap().contains("suspended"));
        assert_eq!(
            owner
                .get(app.url("/api/v1/members"))
                .send()
                .await
                .unwrap()
                .status(),
            403,
            "{mode:?}: live sessions lose the tenant"
        );
        let (status, _) = api(
            &reqwest::Client::new(),
            reqwest::Method::GET,
            app.url("/api/v1/me"),
            &key,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        let listed: Value = admin
            .get(app.url("/api/v1/admin/tenants"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let row = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == tenant.to_string())
            .unwrap();
        assert_eq!(row["status"], "suspended");
        assert_eq!(row["users"], 1);

        let reactivated = admin
            .post(app.url(&format!("/api/v1/admin/tenants/{tenant}/reactivate")))
            .header("x-csrf-token", &admin_csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(reactivated.status(), 204);
        let (_, again) = app.login(&owner_email, PASSWORD).await;
        assert_eq!(again.status(), 303);
        let audit: Value = admin
            .get(app.url(&format!("/api/v1/admin/tenants/{tenant}/audit-log")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let actions: Vec<&str> = audit
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert!(
            actions.contains(&"tenant.suspend")
                && actions.contains(&"tenant.reactivate")
                && actions.contains(&"login.refused_suspended"),
            "{actions:?}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_api_route() {
    let app = spawn_app(Mode::Embedded).await;
    let document: Value = reqwest::get(app.url("/api/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        document["openapi"].as_str().unwrap().chars().next(),
        Some('3')
    );
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/api/v1/me",
        "/api/v1/members",
        "/api/v1/members/{user_id}",
        "/api/v1/invitations",
        "/api/v1/api-keys",
        "/api/v1/api-keys/{key_id}",
        "/api/v1/audit-log",
        "/api/v1/runs",
        "/api/v1/runs/replay",
        "/api/v1/runs/{run_id}",
        "/api/v1/runs/{run_id}/replay",
        "/api/v1/dead-letters",
        "/api/v1/incidents",
        "/api/v1/incidents/{incident_id}/acknowledge",
        "/api/v1/alert-channels/{channel_id}/test",
        "/api/v1/alert-rules/{rule_id}",
        "/api/v1/alert-digest",
        "/api/v1/pairs/{pair_id}/webhooks/check",
        "/api/v1/admin/tenants",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    // Unknown API paths answer JSON 404s, not the console.
    let response = reqwest::get(app.url("/api/v1/nope")).await.unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_member_of_several_tenants_picks_one_after_login_and_can_switch() {
    let app = spawn_app(Mode::Embedded).await;
    let first = app.tenant("first").await;
    let second = app.tenant("second").await;
    let email = unique_email("multi");
    let user = app.user(&email, Some((first, Role::Viewer)), false).await;
    app.store
        .upsert_member(second, user, Role::Admin)
        .await
        .unwrap();

    let (client, response) = app.login(&email, PASSWORD).await;
    assert_eq!(
        response.headers()["location"],
        "/console/select-tenant",
        "several tenants: choose first"
    );
    assert_eq!(
        client
            .get(app.url("/api/v1/members"))
            .send()
            .await
            .unwrap()
            .status(),
        403,
        "no tenant chosen yet"
    );
    let page = client
        .get(app.url("/console/select-tenant"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Tenant first") && page.contains("Tenant second"));
    let csrf = csrf_of(&page);
    for (tenant, role) in [(first, "viewer"), (second, "admin")] {
        let chosen = client
            .post(app.url("/console/tenant"))
            .form(&[("csrf", csrf.as_str()), ("tenant_id", &tenant.to_string())])
            .send()
            .await
            .unwrap();
        assert_eq!(chosen.status(), 303);
        let me: Value = client
            .get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["tenant"]["id"], tenant.to_string());
        assert_eq!(me["role"], role);
    }
    let dashboard = client
        .get(app.url("/console"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        dashboard.contains("id=\"tenant-switch\""),
        "the switcher is on every page"
    );
}

#[tokio::test]
async fn a_session_past_half_its_life_is_renewed_with_a_fresh_cookie() {
    let app = spawn_app(Mode::Embedded).await;
    let tenant = app.tenant("renew").await;
    let email = unique_email("renew");
    let user = app.user(&email, Some((tenant, Role::Viewer)), false).await;
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    let session = app
        .store
        .create_session(user, Some(tenant), expires)
        .await
        .unwrap();
    let keys =
        syncline_web::auth::session::SessionKeys::new(common::SESSION_SECRET.to_vec(), false);
    let response = reqwest::Client::new()
        .get(app.url("/api/v1/me"))
        .header(
            "cookie",
            format!("syncline_session={}", keys.issue(session.id, user, expires)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let renewed = response
        .headers()
        .get("set-cookie")
        .expect("a renewed cookie")
        .to_str()
        .unwrap();
    assert!(
        renewed.starts_with("syncline_session=") && renewed.contains("Max-Age=43200"),
        "{renewed}"
    );
    let stored = app.store.session(session.id).await.unwrap().unwrap();
    assert!(
        stored.expires_at > expires + chrono::Duration::hours(10),
        "the row's expiry moved too"
    );
}
