//! Alerting on both backends, through the real mailer and a real SMTP sink and a real HTTP
//! webhook receiver: a dead-lettered run emails once (however many passes run, however many
//! evaluators race), its replay emails "resolved"; transient failures that recover send
//! nothing; webhooks are signed and retried.
//!
//! Runs are driven through the store the way a worker records them (claim, finish with the
//! classified error), not through the emulators.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use common::{
    MODES, TestApp, env, mail_count, mails_to, spawn_app, unique_email, wait_for_mail_containing,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use syncline_runner::{
    AlertEvaluator, AlertOptions, Notifier, SIGNATURE_HEADER, WebhookFormat, verify_signature,
};
use syncline_store::{
    ChannelKind, ConnectionKind, InboxInsert, InboxStatus, NewChannel, NewConnection,
    NewInboxEvent, NewPair, NewRun, PairId, PairStatus, RunId, RunOutcome, RunStatus, TenantId,
};
use syncline_web::mail::Mailer;

fn options(app: &TestApp) -> AlertOptions {
    AlertOptions {
        public_url: app.base.clone(),
        webhook_attempts: 4,
        webhook_backoff: Duration::from_millis(50),
        webhook_timeout: Duration::from_secs(5),
        ..AlertOptions::default()
    }
}

fn evaluator(app: &TestApp) -> AlertEvaluator {
    let mailer = Mailer::new(
        Some(&env("SYNCLINE_TEST_SMTP_URL")),
        "Syncline Alerts <alerts@syncline.test>",
    )
    .unwrap();
    let notifier = Notifier::new(app.store.clone(), Arc::new(mailer), options(app)).unwrap();
    AlertEvaluator::new(app.store.clone(), Arc::new(notifier), options(app))
}

/// An active pair named `name` with its two connections.
async fn pair(
    app: &TestApp,
    tenant: TenantId,
    name: &str,
) -> (PairId, syncline_store::ConnectionId) {
    let connection = |kind, label: String| NewConnection {
        kind,
        name: label,
        sandbox: true,
        settings: json!({}),
    };
    let shop = app
        .store
        .create_connection(
            tenant,
            &connection(ConnectionKind::Shopify, format!("{name} shop")),
        )
        .await
        .unwrap();
    let erp = app
        .store
        .create_connection(
            tenant,
            &connection(ConnectionKind::D365, format!("{name} erp")),
        )
        .await
        .unwrap();
    let pair = app
        .store
        .create_pair(
            tenant,
            &NewPair {
                name: name.into(),
                shopify_connection_id: shop.id,
                d365_connection_id: erp.id,
                environment: "sandbox".into(),
                flows: vec!["orders".into()],
            },
        )
        .await
        .unwrap();
    app.store
        .set_pair_status(tenant, pair.id, PairStatus::Active, None)
        .await
        .unwrap();
    (pair.id, shop.id)
}

async fn email_channel(app: &TestApp, tenant: TenantId, to: &str) {
    app.store
        .create_alert_channel(
            tenant,
            &NewChannel {
                name: "Operations".into(),
                kind: ChannelKind::Email,
                settings: json!({ "addresses": [to] }),
                enabled: true,
            },
        )
        .await
        .unwrap();
}

/// A queued run for a new event.
async fn new_run(
    app: &TestApp,
    tenant: TenantId,
    (pair, shop): (PairId, syncline_store::ConnectionId),
    order: &str,
) -> RunId {
    let event = NewInboxEvent {
        connection_id: shop,
        webhook_id: uuid::Uuid::new_v4().to_string(),
        topic: "orders/create".into(),
        shop_domain: "alerts.myshopify.com".into(),
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
    app.store
        .create_run(
            tenant,
            &NewRun {
                pair_id: pair,
                inbox_id: inbox,
                flow: "orders".into(),
                shopify_ref: Some(order.into()),
                input_snapshot: None,
            },
        )
        .await
        .unwrap()
        .0
        .id
}

/// One attempt of a run, recorded the way the flow engine records it.
async fn attempt(
    app: &TestApp,
    tenant: TenantId,
    run: RunId,
    status: RunStatus,
    error: Option<(&str, &str)>,
) {
    app.store
        .claim_run(tenant, run, chrono::Duration::seconds(60))
        .await
        .unwrap()
        .expect("the run is due");
    let outcome = RunOutcome {
        status,
        // Due at once, so the next attempt can be claimed right away.
        next_attempt_at: (status == RunStatus::Retrying)
            .then(|| Utc::now() - chrono::Duration::seconds(1)),
        error: error.map(|(_, text)| text.to_owned()),
        error_class: error.map(|(class, _)| class.to_owned()),
        d365_ref: (status == RunStatus::Succeeded).then(|| "SO-000123".to_owned()),
        output_snapshot: None,
        mapping_version: Some("v2".into()),
        input_snapshot: None,
    };
    app.store.finish_run(tenant, run, &outcome).await.unwrap();
}

const CAUSE: &str = "SalesOrderLines.ItemNumber: item 'Blue Widget' does not exist in D365";

#[tokio::test]
async fn a_dead_letter_emails_once_and_its_replay_emails_resolved() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let tenant = app.tenant("alerting").await;
        let pair = pair(&app, tenant, "Webshop EU").await;
        let to = unique_email("ops");
        email_channel(&app, tenant, &to).await;
        // Two evaluators stand for two worker processes.
        let (first, second) = (evaluator(&app), evaluator(&app));

        // A broken mapping: the run fails permanently and is dead-lettered.
        let run = new_run(&app, tenant, pair, "#1001").await;
        attempt(
            &app,
            tenant,
            run,
            RunStatus::Dead,
            Some(("permanent", CAUSE)),
        )
        .await;
        for _ in 0..3 {
            let (a, b) = tokio::join!(first.tick(), second.tick());
            a.unwrap();
            b.unwrap();
        }
        first.flush().await;
        second.flush().await;
        let mail = wait_for_mail_containing(&to, "FIRING").await;
        assert!(
            mail.contains("Webshop EU"),
            "{mode:?}: names the pair: {mail}"
        );
        assert!(
            mail.contains("Blue Widget"),
            "{mode:?}: names the cause: {mail}"
        );
        assert!(
            mail.contains("1 dead-lettered run"),
            "{mode:?}: counts: {mail}"
        );
        assert!(
            mail.contains(&format!(
                "{}/console/runs?pair={}&status=dead",
                app.base, pair.0
            )),
            "{mode:?}: links the runs: {mail}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(mail_count(&to), 1, "{mode:?}: exactly one email");
        assert_eq!(app.store.count_open_incidents(tenant).await.unwrap(), 1);

        // Fix and replay: the run succeeds, the condition clears, "resolved" goes out once.
        app.store.requeue_run(tenant, run).await.unwrap();
        attempt(&app, tenant, run, RunStatus::Succeeded, None).await;
        for _ in 0..2 {
            let (a, b) = tokio::join!(first.tick(), second.tick());
            a.unwrap();
            b.unwrap();
        }
        first.flush().await;
        second.flush().await;
        let resolved = wait_for_mail_containing(&to, "RESOLVED").await;
        assert!(resolved.contains("Webshop EU"), "{mode:?}: {resolved}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(mail_count(&to), 2, "{mode:?}: one firing, one resolved");
        assert_eq!(app.store.count_open_incidents(tenant).await.unwrap(), 0);
        let history = app.store.list_incidents(tenant, false, 10).await.unwrap();
        assert_eq!(history.len(), 1);
        assert!(history[0].resolved_at.is_some());
    }
}

#[tokio::test]
async fn a_d365_outage_that_recovers_within_the_retries_sends_nothing() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let tenant = app.tenant("outage").await;
        let pair = pair(&app, tenant, "Outage pair").await;
        let to = unique_email("quiet");
        email_channel(&app, tenant, &to).await;
        let evaluator = evaluator(&app);

        // Five orders arrive during the outage; every attempt fails with a 503 and is retried.
        let mut runs = Vec::new();
        for n in 0..5 {
            runs.push(new_run(&app, tenant, pair, &format!("#20{n}")).await);
        }
        for _ in 0..3 {
            for run in &runs {
                attempt(
                    &app,
                    tenant,
                    *run,
                    RunStatus::Retrying,
                    Some(("transient", "D365 answered 503 Service Unavailable")),
                )
                .await;
            }
            evaluator.tick().await.unwrap();
        }
        // D365 is back: every retry succeeds.
        for run in &runs {
            attempt(&app, tenant, *run, RunStatus::Succeeded, None).await;
        }
        evaluator.tick().await.unwrap();
        evaluator.flush().await;
        assert_eq!(
            app.store
                .list_incidents(tenant, false, 10)
                .await
                .unwrap()
                .len(),
            0,
            "{mode:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(mail_count(&to), 0, "{mode:?}: nothing was sent");
    }
}

/// A webhook receiver answering 503 to its first `failures` requests; records every request.
async fn receiver(failures: usize) -> (String, Arc<Mutex<Vec<(HeaderMap, Bytes)>>>) {
    let seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
    let recorded = seen.clone();
    let app = axum::Router::new().route(
        "/hook/{token}",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let recorded = recorded.clone();
            async move {
                let mut seen = recorded.lock().unwrap();
                seen.push((headers, body));
                if seen.len() <= failures {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/hook/t0k3n"), seen)
}

async fn webhook_channel(
    app: &TestApp,
    tenant: TenantId,
    url: &str,
    format: WebhookFormat,
    secret: &str,
) {
    let channel = app
        .store
        .create_alert_channel(
            tenant,
            &NewChannel {
                name: format!("Hook {}", format.as_str()),
                kind: ChannelKind::Webhook,
                settings: json!({ "format": format.as_str() }),
                enabled: true,
            },
        )
        .await
        .unwrap();
    app.store
        .put_secret(
            tenant,
            &WebhookFormat::url_secret(channel.id),
            &SecretString::from(url.to_owned()),
        )
        .await
        .unwrap();
    app.store
        .put_secret(
            tenant,
            &WebhookFormat::signing_secret(channel.id),
            &SecretString::from(secret.to_owned()),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn webhooks_are_signed_and_a_failing_receiver_is_retried() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let tenant = app.tenant("hooks").await;
        let pair = pair(&app, tenant, "Hooked pair").await;
        let (generic_url, generic) = receiver(2).await;
        let (slack_url, slack) = receiver(0).await;
        let secret = "whsec_test_0123456789";
        webhook_channel(&app, tenant, &generic_url, WebhookFormat::Generic, secret).await;
        webhook_channel(
            &app,
            tenant,
            &slack_url,
            WebhookFormat::Slack,
            "other-secret",
        )
        .await;
        let (evaluator, other) = (evaluator(&app), evaluator(&app));

        let run = new_run(&app, tenant, pair, "#3001").await;
        attempt(
            &app,
            tenant,
            run,
            RunStatus::Dead,
            Some(("permanent", CAUSE)),
        )
        .await;
        // Each pass sends what is due; the failed delivery is due again after its backoff,
        // from the database (a second evaluator process takes over the retries).
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while generic.lock().unwrap().len() < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "{mode:?}: the receiver was not retried"
            );
            evaluator.tick().await.unwrap();
            evaluator.flush().await;
            other.tick().await.unwrap();
            other.flush().await;
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        for _ in 0..3 {
            evaluator.tick().await.unwrap();
            evaluator.flush().await;
        }

        let requests = generic.lock().unwrap().clone();
        assert_eq!(requests.len(), 3, "{mode:?}: two 503s, then delivered once");
        let incident = app
            .store
            .list_incidents(tenant, false, 1)
            .await
            .unwrap()
            .remove(0);
        let deliveries = app
            .store
            .alert_deliveries(tenant, incident.id)
            .await
            .unwrap();
        assert_eq!(deliveries.len(), 2, "{mode:?}: one per channel");
        assert!(
            deliveries.iter().all(|d| d.status == "sent"),
            "{mode:?}: {deliveries:?}"
        );
        assert_eq!(deliveries.iter().map(|d| d.attempts).max(), Some(3));
        let deliveries: Vec<&str> = requests
            .iter()
            .map(|(h, _)| h.get("x-syncline-delivery").unwrap().to_str().unwrap())
            .collect();
        assert!(
            deliveries.iter().all(|d| *d == deliveries[0]),
            "retries keep the delivery id"
        );
        let (headers, body) = requests.last().unwrap();
        let signature = headers.get(SIGNATURE_HEADER).unwrap().to_str().unwrap();
        let now = Utc::now().timestamp();
        assert!(
            verify_signature(signature, secret.as_bytes(), body, now, 300),
            "{mode:?}: {signature}"
        );
        assert!(!verify_signature(
            signature,
            b"wrong secret",
            body,
            now,
            300
        ));
        assert!(!verify_signature(
            signature,
            secret.as_bytes(),
            b"{\"tampered\":1}",
            now,
            300
        ));
        assert!(
            !verify_signature(signature, secret.as_bytes(), body, now + 3600, 300),
            "old signatures are refused"
        );
        let document: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(document["event"], "incident.opened");
        assert_eq!(document["pair"]["name"], "Hooked pair");
        assert_eq!(document["incident"]["kind"], "run_dead");
        assert_eq!(document["incident"]["cause"], CAUSE);
        assert!(
            document["links"]["runs"]
                .as_str()
                .unwrap()
                .starts_with(&app.base)
        );

        let slack = slack.lock().unwrap().clone();
        assert_eq!(slack.len(), 1);
        let text: Value = serde_json::from_slice(&slack[0].1).unwrap();
        assert!(
            text["text"].as_str().unwrap().contains("Hooked pair"),
            "{text}"
        );

        // Secrets never show up in the logs.
        let logs = String::from_utf8_lossy(&common::captured_logs().lock().unwrap()).into_owned();
        assert!(
            !logs.contains(secret) && !logs.contains("t0k3n"),
            "{mode:?}: a secret was logged"
        );
    }
}

#[tokio::test]
async fn channels_rules_and_incidents_through_the_console_and_the_api() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let tenant = app.tenant("console-alerts").await;
        let pair = pair(&app, tenant, "Console pair").await;
        let owner = unique_email("owner");
        app.user(&owner, Some((tenant, syncline_store::Role::Owner)), false)
            .await;
        let client = app.session(&owner).await;
        let csrf = app.csrf(&client).await;

        // Field-level errors, then a working email channel to a member and an address.
        let bad = client
            .post(app.url("/console/alerts/channels"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", "Ops"),
                ("kind", "email"),
                ("addresses", "not-an-address"),
                ("enabled", "on"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 422, "{mode:?}");
        let page = bad.text().await.unwrap();
        assert!(
            page.contains("data-field=\"addresses\"")
                && page.contains("not-an-address is not an email address"),
            "{mode:?}"
        );
        let extra = unique_email("oncall");
        let created = client
            .post(app.url("/console/alerts/channels"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", "Ops"),
                ("kind", "email"),
                ("addresses", extra.as_str()),
                ("enabled", "on"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 200, "{mode:?}");
        assert!(created.text().await.unwrap().contains("Ops&#34; created."));

        // The API creates a webhook channel and hands out its generated secret once.
        let key = app.api_key(&client, "admin").await;
        let http = reqwest::Client::new();
        let response = http
            .post(app.url("/api/v1/alert-channels"))
            .bearer_auth(&key)
            .json(&json!({"name": "Plain http elsewhere", "kind": "webhook", "url": "http://hooks.example.com/x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            422,
            "{mode:?}: only loopback may use http"
        );
        let (url, received) = receiver(0).await;
        let response = http
            .post(app.url("/api/v1/alert-channels"))
            .bearer_auth(&key)
            .json(&json!({"name": "Hook", "kind": "webhook", "url": url}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{mode:?}");
        let created: Value = response.json().await.unwrap();
        let secret = created["signing_secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("whsec_"));
        let channels: Value = http
            .get(app.url("/api/v1/alert-channels"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            !channels.to_string().contains(&secret) && !channels.to_string().contains("t0k3n"),
            "{mode:?}: secrets are write-only"
        );

        // "Send test notification" on both channels.
        let channel_id = created["channel"]["id"].as_str().unwrap();
        let tested: Value = http
            .post(app.url(&format!("/api/v1/alert-channels/{channel_id}/test")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(tested["ok"], true, "{mode:?}: {tested}");
        {
            let hits = received.lock().unwrap();
            assert_eq!(hits.len(), 1);
            let (headers, body) = &hits[0];
            let signature = headers.get(SIGNATURE_HEADER).unwrap().to_str().unwrap();
            assert!(verify_signature(
                signature,
                secret.as_bytes(),
                body,
                Utc::now().timestamp(),
                300
            ));
        }
        let ops = app
            .store
            .list_alert_channels(tenant)
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.name == "Ops")
            .unwrap();
        let tested = client
            .post(app.url(&format!("/console/alerts/channels/{}/test", ops.id)))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert!(
            tested
                .text()
                .await
                .unwrap()
                .contains("Test notification sent."),
            "{mode:?}"
        );
        wait_for_mail_containing(&extra, "TEST").await;

        // Rules: defaults are listed; a bad threshold is a field error; a good one sticks.
        let rules: Value = http
            .get(app.url("/api/v1/alert-rules"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(rules.as_array().unwrap().len(), 8, "{mode:?}: {rules}");
        let dead_rule = rules
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == "run_dead")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let page = client
            .post(app.url(&format!("/console/alerts/rules/{dead_rule}")))
            .form(&[
                ("csrf", csrf.as_str()),
                ("enabled", "on"),
                ("threshold", "lots"),
                ("window_minutes", "60"),
                ("renotify_minutes", "60"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 422);
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("data-field=\"threshold\"")
        );
        let saved = client
            .post(app.url(&format!("/console/alerts/rules/{dead_rule}")))
            .form(&[
                ("csrf", csrf.as_str()),
                ("enabled", "on"),
                ("threshold", "1"),
                ("window_minutes", "120"),
                ("renotify_minutes", "30"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(saved.status(), 200);
        let rule = app
            .store
            .alert_rule(tenant, dead_rule.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((rule.window_minutes, rule.renotify_minutes), (120, 30));

        // An incident shows as a badge and on the incidents page, and is acknowledged there.
        let run = new_run(&app, tenant, pair, "#4001").await;
        attempt(
            &app,
            tenant,
            run,
            RunStatus::Dead,
            Some(("permanent", CAUSE)),
        )
        .await;
        let evaluator = evaluator(&app);
        evaluator.tick().await.unwrap();
        evaluator.flush().await;
        let page = client
            .get(app.url("/console/incidents"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("id=\"incident-badge\"")
                && page.contains("Console pair: Run dead-lettered"),
            "{mode:?}"
        );
        let incidents: Value = http
            .get(app.url("/api/v1/incidents?open=true"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let incident = incidents[0]["id"].as_str().unwrap().to_owned();
        assert_eq!(incidents[0]["status"], "open");
        assert!(
            incidents[0]["runs_url"]
                .as_str()
                .unwrap()
                .contains("status=dead")
        );
        let acked = client
            .post(app.url(&format!("/console/incidents/{incident}/acknowledge")))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(acked.status(), 303, "{mode:?}");
        let one: Value = http
            .get(app.url(&format!("/api/v1/incidents/{incident}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(one["acknowledged_by"], owner.as_str(), "{mode:?}: {one}");
        let audit = app.store.tenant_audit_log(tenant, 200).await.unwrap();
        for action in [
            "alert_channel.create",
            "alert_channel.test",
            "alert_rule.update",
            "incident.acknowledge",
        ] {
            assert!(
                audit.iter().any(|e| e.action == action),
                "{mode:?}: no {action} in the audit log"
            );
        }
    }
}

/// An email channel created through the API; answers its id.
async fn api_email_channel(app: &TestApp, key: &str, name: &str, to: &str) -> String {
    let response = reqwest::Client::new()
        .post(app.url("/api/v1/alert-channels"))
        .bearer_auth(key)
        .json(&json!({"name": name, "kind": "email", "addresses": [to]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    created["channel"]["id"].as_str().unwrap().to_owned()
}

/// The id of a pair's rule of `kind`, through the API.
async fn rule_id(app: &TestApp, key: &str, pair: PairId, kind: &str) -> String {
    let rules: Value = reqwest::Client::new()
        .get(app.url("/api/v1/alert-rules"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == kind && r["pair_id"] == pair.to_string())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_rule_routed_to_one_channel_does_not_notify_the_others() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let tenant = app.tenant("routing").await;
        let north = pair(&app, tenant, "Webshop North").await;
        let south = pair(&app, tenant, "Webshop South").await;
        let owner = unique_email("owner");
        app.user(&owner, Some((tenant, syncline_store::Role::Owner)), false)
            .await;
        let client = app.session(&owner).await;
        let csrf = app.csrf(&client).await;
        let key = app.api_key(&client, "admin").await;
        let (to_a, to_b) = (unique_email("team-a"), unique_email("team-b"));
        let channel_a = api_email_channel(&app, &key, "Team A", &to_a).await;
        let channel_b = api_email_channel(&app, &key, "Team B", &to_b).await;

        // North's dead-letter rule goes to Team A only, chosen in the console form.
        let north_rule = rule_id(&app, &key, north.0, "run_dead").await;
        let saved = client
            .post(app.url(&format!("/console/alerts/rules/{north_rule}")))
            .form(&[
                ("csrf", csrf.as_str()),
                ("enabled", "on"),
                ("threshold", "1"),
                ("window_minutes", "1440"),
                ("renotify_minutes", "1440"),
                ("channel_ids", channel_a.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(saved.status(), 200, "{mode:?}");
        let page = saved.text().await.unwrap();
        assert!(
            page.contains(&format!(
                "<option value=\"{channel_a}\" selected>Team A</option>"
            )),
            "{mode:?}: the form shows the chosen channel"
        );
        let rules: Value = reqwest::Client::new()
            .get(app.url("/api/v1/alert-rules"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let routed = rules
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == north_rule.as_str())
            .unwrap();
        assert_eq!(routed["channel_ids"], json!([channel_a]), "{mode:?}");

        // Another tenant's channel cannot be chosen (and is not revealed to exist).
        let other = app.tenant("routing-other").await;
        let foreign = app
            .store
            .create_alert_channel(
                other,
                &NewChannel {
                    name: "Theirs".into(),
                    kind: ChannelKind::Email,
                    settings: json!({ "addresses": ["x@example.test"] }),
                    enabled: true,
                },
            )
            .await
            .unwrap();
        let refused = reqwest::Client::new()
            .put(app.url(&format!("/api/v1/alert-rules/{north_rule}")))
            .bearer_auth(&key)
            .json(&json!({ "channel_ids": [foreign.id.to_string()] }))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 422, "{mode:?}");

        let evaluator = evaluator(&app);
        let run = new_run(&app, tenant, north, "#5001").await;
        attempt(
            &app,
            tenant,
            run,
            RunStatus::Dead,
            Some(("permanent", CAUSE)),
        )
        .await;
        evaluator.tick().await.unwrap();
        evaluator.flush().await;
        let mail = wait_for_mail_containing(&to_a, "Webshop North").await;
        assert!(mail.contains(CAUSE), "{mode:?}: {mail}");
        assert_eq!(
            mail_count(&to_b),
            0,
            "{mode:?}: Team B is not on North's rule"
        );

        // South's rule chose no channel: every enabled channel hears about it.
        let run = new_run(&app, tenant, south, "#5002").await;
        attempt(
            &app,
            tenant,
            run,
            RunStatus::Dead,
            Some(("permanent", CAUSE)),
        )
        .await;
        evaluator.tick().await.unwrap();
        evaluator.flush().await;
        wait_for_mail_containing(&to_a, "Webshop South").await;
        wait_for_mail_containing(&to_b, "Webshop South").await;
        assert!(
            mails_to(&to_b).iter().all(|m| !m.contains("Webshop North")),
            "{mode:?}: Team B never got North's incident"
        );

        // Choosing nothing again routes North to every channel; deleting a chosen channel
        // removes it from the rule.
        let cleared: Value = reqwest::Client::new()
            .put(app.url(&format!("/api/v1/alert-rules/{north_rule}")))
            .bearer_auth(&key)
            .json(&json!({ "channel_ids": [channel_b] }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(cleared["channel_ids"], json!([channel_b]), "{mode:?}");
        let deleted = reqwest::Client::new()
            .delete(app.url(&format!("/api/v1/alert-channels/{channel_b}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 204);
        let rule = app
            .store
            .alert_rule(tenant, north_rule.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(rule.channel_ids.is_empty(), "{mode:?}");
    }
}

#[tokio::test]
async fn the_daily_digest_is_sent_once_a_day_with_the_days_counts() {
    use chrono::Timelike;
    for mode in MODES {
        let app = spawn_app(mode).await;
        let tenant = app.tenant("digest").await;
        let webshop = pair(&app, tenant, "Webshop EU").await;
        let owner = unique_email("owner");
        app.user(&owner, Some((tenant, syncline_store::Role::Owner)), false)
            .await;
        let client = app.session(&owner).await;
        let csrf = app.csrf(&client).await;

        // Today's runs: two succeeded, one dead, one still waiting.
        for order in ["#6001", "#6002"] {
            let run = new_run(&app, tenant, webshop, order).await;
            attempt(&app, tenant, run, RunStatus::Succeeded, None).await;
        }
        let run = new_run(&app, tenant, webshop, "#6003").await;
        attempt(
            &app,
            tenant,
            run,
            RunStatus::Dead,
            Some(("permanent", CAUSE)),
        )
        .await;
        new_run(&app, tenant, webshop, "#6004").await;

        // The clock the evaluation is given: two hours from now, and the digest's hour is
        // that hour, so the runs above fall in its 24 hours.
        let due = Utc::now() + chrono::Duration::hours(2);
        let hour = due.hour();
        let to = unique_email("digest");

        // A bad hour is a field error; the page keeps the digest off.
        let bad = client
            .post(app.url("/console/alerts/digest"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("enabled", "on"),
                ("recipients", to.as_str()),
                ("hour_utc", "25"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 422, "{mode:?}");
        assert!(
            bad.text()
                .await
                .unwrap()
                .contains("data-field=\"digest_hour_utc\"")
        );
        let saved = client
            .post(app.url("/console/alerts/digest"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("enabled", "on"),
                ("recipients", to.as_str()),
                ("hour_utc", &hour.to_string()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(saved.status(), 200, "{mode:?}");
        assert!(saved.text().await.unwrap().contains("Daily digest saved"));
        let key = app.api_key(&client, "viewer").await;
        let settings: Value = reqwest::Client::new()
            .get(app.url("/api/v1/alert-digest"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            settings,
            json!({"enabled": true, "recipients": [to], "hour_utc": hour}),
            "{mode:?}"
        );

        // Two evaluators stand for two worker processes.
        let (first, second) = (evaluator(&app), evaluator(&app));
        if hour > 0 {
            let early = due - chrono::Duration::hours(1);
            assert_eq!(
                first.send_digests(early).await.unwrap().sent,
                0,
                "{mode:?}: before its hour"
            );
        }
        let (a, b) = tokio::join!(first.send_digests(due), second.send_digests(due));
        assert_eq!(
            a.unwrap().sent + b.unwrap().sent,
            1,
            "{mode:?}: exactly one process sends"
        );
        let mail = wait_for_mail_containing(&to, "Daily digest").await;
        assert!(
            mail.contains("Webshop EU: 2 succeeded, 1 failed, 1 in progress; backlog 1"),
            "{mode:?}: {mail}"
        );
        assert!(mail.contains(&format!("1 × {CAUSE}")), "{mode:?}: {mail}");
        assert!(
            mail.contains("Backlog: 1 run(s) waiting"),
            "{mode:?}: {mail}"
        );
        // Later the same day, and after a restart (a new evaluator), nothing more.
        let restarted = evaluator(&app);
        let later = due + chrono::Duration::minutes(5);
        let same_day = later.date_naive() == due.date_naive();
        let again = restarted
            .send_digests(if same_day { later } else { due })
            .await
            .unwrap();
        assert_eq!(again.sent, 0, "{mode:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(mail_count(&to), 1, "{mode:?}: one digest a day");
    }
}
