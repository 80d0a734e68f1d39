//! Alerting end to end on both backends, with the real pipeline: the sandbox Shopify shop
//! places an order, its signed webhook reaches the intake, a worker maps it with the pair's
//! published mapping and talks to the D365 emulator, and the alert evaluator runs on its own
//! timer and emails the SMTP sink.
//!
//! A mapping whose ItemNumber comes from the line title dead-letters the order: exactly one
//! email names the pair and the cause. Publishing the fixed mapping and replaying resolves
//! it: one "resolved" email. A D365 outage that recovers within the retries sends nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    MODES, TestApp, env, mail_count, spawn_app, template_with, unique_email,
    wait_for_mail_containing,
};
use serde_json::{Value, json};
use syncline_runner::{
    AlertOptions, FlowOptions, InProcessRateLimiter, RateLimit, RetryPolicy, RuntimeOptions,
    SweeperOptions, WorkerPoolOptions, spawn_alerts, spawn_runtime,
};
use syncline_store::{ConnectionKind, Role, RunStatus, TenantId};
use syncline_web::mail::Mailer;
use tokio_util::sync::CancellationToken;

struct Running {
    stop: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Workers (quick retries) and the alert evaluator (a short interval) for the app.
fn start_workers_and_alerts(app: &TestApp) -> Running {
    let stop = CancellationToken::new();
    let limit = RateLimit {
        capacity: 1000,
        refill_per_second: 1000.0,
    };
    let options = RuntimeOptions {
        workers: WorkerPoolOptions {
            concurrency: 4,
            poll: Duration::from_millis(200),
        },
        flows: FlowOptions {
            retry: RetryPolicy {
                base: Duration::from_millis(200),
                max_delay: Duration::from_millis(800),
                max_attempts: 8,
            },
            ..FlowOptions::default()
        },
        sweeper: SweeperOptions {
            interval: Duration::from_millis(200),
            ..SweeperOptions::default()
        },
        ..RuntimeOptions::default()
    };
    spawn_runtime(
        app.store.clone(),
        app.dispatcher.clone(),
        Arc::new(InProcessRateLimiter::new(limit).unwrap()),
        options,
        stop.clone(),
    )
    .unwrap();
    let mailer = Mailer::new(
        Some(&env("SYNCLINE_TEST_SMTP_URL")),
        "Syncline Alerts <alerts@syncline.test>",
    )
    .unwrap();
    let alerts = AlertOptions {
        interval: Duration::from_millis(300),
        public_url: app.base.clone(),
        ..AlertOptions::default()
    };
    spawn_alerts(app.store.clone(), Arc::new(mailer), alerts, stop.clone()).unwrap();
    Running { stop }
}

struct Setup {
    tenant: TenantId,
    client: reqwest::Client,
    csrf: String,
    pair: String,
}

/// A tenant whose sandbox pair "Webshop EU → D365" is active, and an email channel to `to`.
async fn sandbox_pair(app: &TestApp, to: &str) -> Setup {
    let tenant = app
        .tenant(&format!(
            "e2e-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ))
        .await;
    let email = unique_email("owner");
    app.user(&email, Some((tenant, Role::Owner)), false).await;
    let client = app.session(&email).await;
    let csrf = app.csrf(&client).await;
    let created = client
        .post(app.url("/console/connections/sandbox"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success() || created.status().is_redirection());
    let connections = app.store.list_connections(tenant).await.unwrap();
    let id_of = |kind| connections.iter().find(|c| c.kind == kind).unwrap().id;
    let pair: Value = client
        .post(app.url("/api/v1/pairs"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "Webshop EU", "shopify_connection_id": id_of(ConnectionKind::Shopify), "d365_connection_id": id_of(ConnectionKind::D365), "environment": "sandbox", "flows": ["orders"]}))
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
    let channel = client
        .post(app.url("/api/v1/alert-channels"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "Operations", "kind": "email", "addresses": [to]}))
        .send()
        .await
        .unwrap();
    assert_eq!(channel.status(), 201);
    Setup {
        tenant,
        client,
        csrf,
        pair,
    }
}

async fn publish(app: &TestApp, setup: &Setup, document: &Value) {
    let response = setup
        .client
        .post(app.url(&format!(
            "/console/pairs/{}/mappings/orders/publish",
            setup.pair
        )))
        .form(&[
            ("csrf", setup.csrf.as_str()),
            ("document", &document.to_string()),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert!(
        status.is_success(),
        "publish: {status} {}",
        response.text().await.unwrap()
    );
}

async fn place_order(app: &TestApp, setup: &Setup) {
    let response = setup
        .client
        .post(app.url(&format!("/console/pairs/{}/test-order", setup.pair)))
        .form(&[("csrf", setup.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success() || response.status().is_redirection());
}

/// Waits until the tenant has `count` runs in `status` and none still pending.
async fn wait_for_runs(app: &TestApp, tenant: TenantId, status: RunStatus, count: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let counts = app.store.run_counts(tenant, None).await.unwrap();
        let of = |s: RunStatus| counts.iter().find(|(x, _)| *x == s).map_or(0, |(_, n)| *n);
        let pending = of(RunStatus::Queued) + of(RunStatus::Running) + of(RunStatus::Retrying);
        if of(status) >= count && pending == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "runs did not reach {count} {status:?}: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Lets the evaluator run a few more passes.
async fn a_few_passes() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

#[tokio::test]
async fn a_broken_mapping_emails_once_with_the_cause_and_its_fix_emails_resolved() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let _running = start_workers_and_alerts(&app);
        let to = unique_email("ops");
        let setup = sandbox_pair(&app, &to).await;

        // ItemNumber from the line title: D365 knows no such item, the run dead-letters.
        publish(
            &app,
            &setup,
            &template_with("SalesOrderLines.ItemNumber", "line_items[].title"),
        )
        .await;
        place_order(&app, &setup).await;
        wait_for_runs(&app, setup.tenant, RunStatus::Dead, 1).await;
        let dead: Value = setup
            .client
            .get(app.url("/api/v1/dead-letters"))
            .header("x-csrf-token", &setup.csrf)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let runs = dead.get("runs").cloned().unwrap_or(dead.clone());
        let run = runs[0].clone();
        let error = run["error"].as_str().unwrap().to_owned();

        let mail = wait_for_mail_containing(&to, "FIRING").await;
        assert!(
            mail.contains("Webshop EU"),
            "{mode:?}: names the pair: {mail}"
        );
        assert!(
            mail.replace("=\n", "")
                .contains(&error[..error.len().min(60)]),
            "{mode:?}: names the cause {error:?}: {mail}"
        );
        a_few_passes().await;
        assert_eq!(mail_count(&to), 1, "{mode:?}: exactly one email");

        // Fix the mapping and replay: the run succeeds and the incident resolves.
        publish(
            &app,
            &setup,
            &template_with("SalesOrderLines.ItemNumber", "line_items[].sku"),
        )
        .await;
        let replay = setup
            .client
            .post(app.url(&format!(
                "/api/v1/runs/{}/replay",
                run["id"].as_str().unwrap()
            )))
            .header("x-csrf-token", &setup.csrf)
            .send()
            .await
            .unwrap();
        assert!(replay.status().is_success(), "{}", replay.status());
        wait_for_runs(&app, setup.tenant, RunStatus::Succeeded, 1).await;
        let resolved = wait_for_mail_containing(&to, "RESOLVED").await;
        assert!(resolved.contains("Webshop EU"), "{mode:?}: {resolved}");
        a_few_passes().await;
        assert_eq!(mail_count(&to), 2, "{mode:?}: one firing, one resolved");

        // A D365 outage that ends within the retries: the order arrives, nobody is emailed.
        app.sandbox.emulators().d365.control().inject(
            serde_json::from_value(
                json!({ "fault": { "kind": "status", "status": 503 }, "target": "odata", "count": 4 }),
            )
            .unwrap(),
        );
        place_order(&app, &setup).await;
        wait_for_runs(&app, setup.tenant, RunStatus::Succeeded, 2).await;
        let attempts: i64 = app
            .store
            .run_counts(setup.tenant, None)
            .await
            .unwrap()
            .iter()
            .map(|(_, n)| n)
            .sum();
        assert_eq!(attempts, 2, "{mode:?}: two runs in all");
        let listed: Value = setup
            .client
            .get(app.url("/api/v1/runs"))
            .header("x-csrf-token", &setup.csrf)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let listed = listed.get("runs").cloned().unwrap_or(listed);
        assert!(
            listed
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["id"] != run["id"] && r["attempts"].as_i64().unwrap_or(0) > 1),
            "{mode:?}: the outage made the new order retry: {listed}"
        );
        a_few_passes().await;
        assert_eq!(mail_count(&to), 2, "{mode:?}: the outage sent nothing");
        assert_eq!(
            app.store.count_open_incidents(setup.tenant).await.unwrap(),
            0
        );

        // The pipeline's metrics saw it all, labelled by flow, outcome and partner only.
        let text = reqwest::get(app.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let scrape =
            prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
        let has = |name: &str, labels: &[(&str, &str)]| {
            scrape.samples.iter().any(|s| {
                s.metric == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(k).is_some_and(|x| x == *v))
            })
        };
        for (name, labels) in [
            (
                "syncline_runs_total",
                vec![("flow", "orders"), ("outcome", "dead")],
            ),
            (
                "syncline_runs_total",
                vec![("flow", "orders"), ("outcome", "succeeded")],
            ),
            (
                "syncline_run_retries_total",
                vec![("flow", "orders"), ("class", "transient")],
            ),
            ("syncline_dead_letters_total", vec![("flow", "orders")]),
            (
                "syncline_run_latency_seconds_count",
                vec![("flow", "orders")],
            ),
            (
                "syncline_partner_requests_total",
                vec![("partner", "d365"), ("outcome", "error")],
            ),
            (
                "syncline_partner_requests_total",
                vec![("partner", "d365"), ("outcome", "ok")],
            ),
            (
                "syncline_limiter_wait_seconds_count",
                vec![("partner", "d365")],
            ),
            (
                "syncline_alert_notifications_total",
                vec![
                    ("channel", "email"),
                    ("event", "incident.resolved"),
                    ("outcome", "sent"),
                ],
            ),
        ] {
            assert!(
                has(name, &labels),
                "{mode:?}: no {name} {labels:?} in\n{text}"
            );
        }
        assert!(!text.contains(&setup.tenant.to_string()) && !text.contains(&setup.pair));
    }
}

/// An evaluator this test ticks by hand (no background pass may re-register behind its back).
fn manual_evaluator(app: &TestApp) -> syncline_runner::AlertEvaluator {
    let mailer = Mailer::new(
        Some(&env("SYNCLINE_TEST_SMTP_URL")),
        "Syncline Alerts <alerts@syncline.test>",
    )
    .unwrap();
    let options = AlertOptions {
        public_url: app.base.clone(),
        ..AlertOptions::default()
    };
    let notifier =
        syncline_runner::Notifier::new(app.store.clone(), Arc::new(mailer), options.clone())
            .unwrap();
    syncline_runner::AlertEvaluator::new(app.store.clone(), Arc::new(notifier), options)
}

/// Runs the check through the API and answers its report.
async fn check_now(app: &TestApp, setup: &Setup) -> Value {
    let response = setup
        .client
        .post(app.url(&format!("/api/v1/pairs/{}/webhooks/check", setup.pair)))
        .header("x-csrf-token", &setup.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn pass(evaluator: &syncline_runner::AlertEvaluator) {
    evaluator.tick().await.unwrap();
    evaluator.flush().await;
}

#[tokio::test]
async fn a_deleted_webhook_subscription_is_re_registered_and_alerts_until_it_is_back() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let to = unique_email("ops");
        let setup = sandbox_pair(&app, &to).await;
        let evaluator = manual_evaluator(&app);
        let shopify = app
            .store
            .list_connections(setup.tenant)
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.kind == ConnectionKind::Shopify)
            .unwrap();
        let shop = shopify.settings["shop_domain"]
            .as_str()
            .unwrap()
            .trim_end_matches(".myshopify.com")
            .to_owned();
        let client = syncline_runner::shopify_client(&app.store, &shopify, "test", "test")
            .await
            .unwrap();
        let callback = format!("{}/hooks/shopify/{}", app.base, shopify.id);
        let subscription = |topic: &'static str| {
            let client = client.clone();
            let callback = callback.clone();
            async move {
                client
                    .webhook_subscriptions()
                    .await
                    .unwrap()
                    .into_iter()
                    .find(|s| s.topic == topic && s.callback_url.as_deref() == Some(&callback))
            }
        };

        // Everything in place: nothing missing, no incident.
        let report = check_now(&app, &setup).await;
        assert_eq!(report["missing"], json!([]), "{mode:?}: {report}");
        assert!(
            report["wanted"]
                .as_array()
                .unwrap()
                .contains(&json!("ORDERS_CREATE"))
        );
        pass(&evaluator).await;
        assert_eq!(
            app.store.count_open_incidents(setup.tenant).await.unwrap(),
            0
        );

        // Someone deletes ORDERS_CREATE at Shopify: the check puts it back and says so.
        let gone = subscription("ORDERS_CREATE").await.unwrap();
        client.webhook_subscription_delete(&gone.id).await.unwrap();
        let report = check_now(&app, &setup).await;
        assert_eq!(
            report["missing"],
            json!(["ORDERS_CREATE"]),
            "{mode:?}: {report}"
        );
        assert_eq!(report["reregistered"], json!(["ORDERS_CREATE"]), "{mode:?}");
        let back = subscription("ORDERS_CREATE").await.expect("re-registered");
        assert_ne!(back.id, gone.id);
        let stored = app
            .store
            .pair_webhooks(setup.tenant, setup.pair.parse().unwrap())
            .await
            .unwrap();
        assert!(
            stored
                .iter()
                .any(|w| w.topic == "ORDERS_CREATE" && w.subscription_id == back.id),
            "{mode:?}: the pair records the new subscription"
        );
        pass(&evaluator).await;
        let incidents = app
            .store
            .list_incidents(setup.tenant, true, 10)
            .await
            .unwrap();
        assert_eq!(incidents.len(), 1, "{mode:?}: {incidents:?}");
        let cause = incidents[0].cause.clone().unwrap_or_default();
        assert!(
            cause.contains("ORDERS_CREATE") && cause.contains("re-registered ORDERS_CREATE"),
            "{mode:?}: {cause}"
        );
        let mail = wait_for_mail_containing(&to, "Webhook subscription missing").await;
        assert!(
            mail.contains("re-registered ORDERS_CREATE"),
            "{mode:?}: {mail}"
        );

        // The next check finds everything: the incident resolves and says so.
        let report = check_now(&app, &setup).await;
        assert_eq!(report["missing"], json!([]), "{mode:?}");
        pass(&evaluator).await;
        assert_eq!(
            app.store.count_open_incidents(setup.tenant).await.unwrap(),
            0
        );
        wait_for_mail_containing(&to, "RESOLVED").await;

        // Shopify refuses to re-register ORDERS_UPDATED: the incident opens with the reason
        // and stays open while it keeps refusing.
        let emulator = &app.sandbox.emulators().shopify;
        emulator
            .set_faults(
                &shop,
                syncline_sim::shopify::Faults {
                    refuse_webhook_topics: vec!["ORDERS_UPDATED".into()],
                    ..Default::default()
                },
            )
            .unwrap();
        let gone = subscription("ORDERS_UPDATED").await.unwrap();
        client.webhook_subscription_delete(&gone.id).await.unwrap();
        let report = check_now(&app, &setup).await;
        assert_eq!(
            report["missing"],
            json!(["ORDERS_UPDATED"]),
            "{mode:?}: {report}"
        );
        assert_eq!(report["reregistered"], json!([]), "{mode:?}");
        assert_eq!(report["failed"][0]["topic"], "ORDERS_UPDATED", "{mode:?}");
        pass(&evaluator).await;
        let mail = wait_for_mail_containing(&to, "re-registering ORDERS_UPDATED failed").await;
        assert!(mail.contains("protected customer data"), "{mode:?}: {mail}");
        check_now(&app, &setup).await;
        pass(&evaluator).await;
        let open = app
            .store
            .list_incidents(setup.tenant, true, 10)
            .await
            .unwrap();
        assert_eq!(open.len(), 1, "{mode:?}: still open");
        assert!(
            open[0]
                .cause
                .as_deref()
                .unwrap_or("")
                .contains("protected customer data")
        );

        // A revoked token: nothing can be listed; the incident stays open, with that reason.
        emulator
            .set_faults(
                &shop,
                syncline_sim::shopify::Faults {
                    revoked_token: true,
                    ..Default::default()
                },
            )
            .unwrap();
        let report = check_now(&app, &setup).await;
        assert!(
            report["error"].as_str().unwrap().contains("401"),
            "{mode:?}: {report}"
        );
        pass(&evaluator).await;
        let open = app
            .store
            .list_incidents(setup.tenant, true, 10)
            .await
            .unwrap();
        assert_eq!(open.len(), 1, "{mode:?}");
        assert!(
            open[0]
                .cause
                .as_deref()
                .unwrap_or("")
                .contains("could not be checked"),
            "{mode:?}: {:?}",
            open[0].cause
        );

        // Shopify accepts again: the next check re-registers and the incident resolves.
        emulator.set_faults(&shop, Default::default()).unwrap();
        let report = check_now(&app, &setup).await;
        assert_eq!(
            report["reregistered"],
            json!(["ORDERS_UPDATED"]),
            "{mode:?}: {report}"
        );
        check_now(&app, &setup).await;
        pass(&evaluator).await;
        assert_eq!(
            app.store.count_open_incidents(setup.tenant).await.unwrap(),
            0,
            "{mode:?}"
        );

        // The pair page has the same check as a button.
        let page = setup
            .client
            .post(app.url(&format!("/console/pairs/{}/webhooks/check", setup.pair)))
            .form(&[("csrf", setup.csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200, "{mode:?}");
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("Every webhook subscription is in place at Shopify."),
            "{mode:?}"
        );
    }
}
