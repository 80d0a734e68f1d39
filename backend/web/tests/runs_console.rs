//! The console's run pages (`/console/runs…`, `/console/dead-letters`) and the dashboard
//! through real HTTP, on both backends: filters and paging, detail with attempts, replays one
//! by one and by filter, tenant isolation, odd query strings, per-pair figures and the chart.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use chrono::{Duration, Utc};
use common::{MODES, TestApp, spawn_app, unique_email};
use reqwest::StatusCode;
use serde_json::{Value, json};
use syncline_store::{
    ConnectionId, ConnectionKind, InboxInsert, InboxStatus, NewConnection, NewInboxEvent, NewPair,
    NewRun, PairId, Role, RunId, RunOutcome, RunStatus, TenantId,
};

/// A tenant with a signed-in session per role and one pair.
struct Tenant {
    id: TenantId,
    owner: reqwest::Client,
    operator: reqwest::Client,
    viewer: reqwest::Client,
    pair: (PairId, ConnectionId),
}

async fn tenant(app: &TestApp, slug: &str) -> Tenant {
    let id = app.tenant(slug).await;
    let mut sessions = Vec::new();
    for role in [Role::Owner, Role::Operator, Role::Viewer] {
        let email = unique_email(role.as_str());
        app.user(&email, Some((id, role)), false).await;
        sessions.push(app.session(&email).await);
    }
    let viewer = sessions.pop().unwrap();
    let operator = sessions.pop().unwrap();
    let owner = sessions.pop().unwrap();
    let pair = pair(app, id, "Main").await;
    Tenant {
        id,
        owner,
        operator,
        viewer,
        pair,
    }
}

async fn pair(app: &TestApp, tenant: TenantId, name: &str) -> (PairId, ConnectionId) {
    let connection = |kind, name: String| NewConnection {
        kind,
        name,
        sandbox: true,
        settings: json!({"shop_domain": "console.myshopify.com"}),
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
                flows: vec!["orders".into(), "customers".into()],
            },
        )
        .await
        .unwrap();
    (pair.id, shop.id)
}

fn outcome(status: RunStatus) -> RunOutcome {
    RunOutcome {
        status,
        next_attempt_at: None,
        error: None,
        error_class: None,
        d365_ref: None,
        output_snapshot: None,
        mapping_version: None,
        input_snapshot: None,
    }
}

/// A run of `flow` for Shopify order `order`, driven to `status` the way a worker would; a
/// dead run first fails once transiently, so it has two attempts.
async fn run(
    app: &TestApp,
    tenant: TenantId,
    (pair, shop): (PairId, ConnectionId),
    flow: &str,
    order: &str,
    status: RunStatus,
) -> RunId {
    let store = &app.store;
    let event = NewInboxEvent {
        connection_id: shop,
        webhook_id: uuid::Uuid::new_v4().to_string(),
        topic: "orders/create".into(),
        shop_domain: "console.myshopify.com".into(),
        api_version: "2026-07".into(),
        event_id: None,
        triggered_at: None,
        payload: b"{}".to_vec(),
        status: InboxStatus::Received,
        error: None,
    };
    let inbox = match store.insert_inbox(tenant, &event).await.unwrap() {
        InboxInsert::Stored(id) | InboxInsert::Duplicate(id) => id,
    };
    let (created, _) = store
        .create_run(
            tenant,
            &NewRun {
                pair_id: pair,
                inbox_id: inbox,
                flow: flow.into(),
                shopify_ref: Some(order.into()),
                input_snapshot: Some(json!({"name": order, "email": "[redacted]"})),
            },
        )
        .await
        .unwrap();
    let id = created.id;
    if status == RunStatus::Queued {
        return id;
    }
    let lease = Duration::seconds(300);
    store.claim_run(tenant, id, lease).await.unwrap().unwrap();
    if status == RunStatus::Dead {
        let retry = RunOutcome {
            next_attempt_at: Some(Utc::now() - Duration::seconds(1)),
            error: Some("D365 answered 503".into()),
            error_class: Some("transient".into()),
            ..outcome(RunStatus::Retrying)
        };
        store.finish_run(tenant, id, &retry).await.unwrap();
        store.claim_run(tenant, id, lease).await.unwrap().unwrap();
    }
    let finished = match status {
        RunStatus::Queued | RunStatus::Running => return id,
        RunStatus::Succeeded => RunOutcome {
            d365_ref: Some(format!("SO-{}", order.trim_start_matches('#'))),
            output_snapshot: Some(json!({"SalesOrderNumber": "SO"})),
            mapping_version: Some("default-1".into()),
            ..outcome(status)
        },
        RunStatus::Retrying => RunOutcome {
            next_attempt_at: Some(Utc::now() + Duration::hours(1)),
            error: Some("D365 answered 503".into()),
            error_class: Some("transient".into()),
            ..outcome(status)
        },
        RunStatus::Failed | RunStatus::Dead => RunOutcome {
            error: Some(format!("unknown SKU ABC-{order}")),
            error_class: Some("permanent".into()),
            ..outcome(status)
        },
    };
    store.finish_run(tenant, id, &finished).await.unwrap();
    id
}

async fn page(app: &TestApp, client: &reqwest::Client, path: &str) -> (StatusCode, String) {
    let response = client.get(app.url(path)).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The run ids a list page shows, top to bottom.
fn listed(html: &str) -> Vec<String> {
    html.split("data-run-id=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect()
}

/// The href of the link whose text is `text`, unescaped.
fn link(html: &str, text: &str) -> Option<String> {
    let end = html.find(&format!(">{text}</a>"))?;
    let start = html[..end].rfind("href=\"")? + "href=\"".len();
    let href = html[start..].split('"').next()?;
    Some(href.replace("&#38;", "&"))
}

async fn audit_actions(app: &TestApp, tenant: TenantId, action: &str) -> Vec<Value> {
    app.store
        .tenant_audit_log(tenant, 500)
        .await
        .unwrap()
        .into_iter()
        .filter(|entry| entry.action == action)
        .map(|entry| entry.detail.0)
        .collect()
}

#[tokio::test]
async fn the_runs_page_lists_filters_and_pages_runs() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let t = tenant(&app, "console-runs").await;

        // A new tenant sees how to get its first run.
        let (status, html) = page(&app, &t.viewer, "/console/runs").await;
        assert_eq!(status, StatusCode::OK, "{mode:?}");
        assert!(html.contains("No runs yet — send a test order"), "{html}");
        assert!(html.contains("<title>Runs · Syncline</title>"));
        assert!(html.contains("href=\"/console/runs\">Runs</a>") && html.contains("Dead letters"));

        let other = pair(&app, t.id, "Other").await;
        let plan = [
            (t.pair, "orders", "#1001", RunStatus::Succeeded),
            (t.pair, "orders", "#1002", RunStatus::Dead),
            (t.pair, "customers", "#1003", RunStatus::Failed),
            (other, "orders", "#1004", RunStatus::Dead),
            (t.pair, "orders", "#1005", RunStatus::Queued),
        ];
        let mut created = Vec::new();
        for (pair, flow, order, status) in plan {
            created.push(run(&app, t.id, pair, flow, order, status).await.to_string());
        }
        let pick = |indexes: &[usize]| -> Vec<String> {
            indexes.iter().rev().map(|i| created[*i].clone()).collect()
        };

        let (_, html) = page(&app, &t.viewer, "/console/runs").await;
        assert_eq!(
            listed(&html),
            pick(&[0, 1, 2, 3, 4]),
            "{mode:?}: newest first"
        );
        for text in [
            "#1001",
            "SO-1001",
            "Other",
            "customers",
            "status-dead",
            "unknown SKU ABC-#1002",
            "permanent",
        ] {
            assert!(html.contains(text), "{mode:?}: the list shows {text}");
        }
        assert!(
            !html.contains("data-testid=\"bulk-replay\""),
            "no bulk replay without a failed or dead filter"
        );

        for (query, expected) in [
            ("status=dead".to_owned(), pick(&[1, 3])),
            (format!("pair={}", other.0), pick(&[3])),
            ("flow=customers".to_owned(), pick(&[2])),
            ("shopify_order=%231004".to_owned(), pick(&[3])),
            ("d365_order=SO-1001".to_owned(), pick(&[0])),
            (
                format!("pair={}&flow=orders&status=dead", t.pair.0),
                pick(&[1]),
            ),
            (
                "from=2000-01-01&to=2999-12-31".to_owned(),
                pick(&[0, 1, 2, 3, 4]),
            ),
            ("to=2000-01-01".to_owned(), Vec::new()),
            ("status=&flow=&pair=".to_owned(), pick(&[0, 1, 2, 3, 4])),
        ] {
            let (status, html) = page(&app, &t.viewer, &format!("/console/runs?{query}")).await;
            assert_eq!(status, StatusCode::OK, "{mode:?}: {query}");
            assert_eq!(listed(&html), expected, "{mode:?}: {query}");
        }
        let (_, html) = page(&app, &t.viewer, "/console/runs?to=2000-01-01").await;
        assert!(html.contains("No runs match these filters."));

        // Dead letters: only dead runs, with their reason; operators get a replay button each.
        let (status, html) = page(&app, &t.operator, "/console/dead-letters").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("<title>Dead letters · Syncline</title>"));
        assert_eq!(listed(&html), pick(&[1, 3]), "{mode:?}");
        assert!(html.contains("unknown SKU ABC-#1004"));
        assert_eq!(
            html.matches("name=\"back\" value=\"dead-letters\"").count(),
            2
        );
        assert!(html.contains("Replay 2 matching runs"), "{mode:?}");
        let (_, html) = page(&app, &t.viewer, "/console/dead-letters").await;
        assert!(
            !html.contains("name=\"back\"") && !html.contains("bulk-replay"),
            "viewers cannot replay"
        );

        // Paging: 50 a page, "Older →" then "← Newer" back to the same page.
        for n in 0..50 {
            run(
                &app,
                t.id,
                t.pair,
                "orders",
                &format!("#2{n:03}"),
                RunStatus::Succeeded,
            )
            .await;
        }
        let (_, first) = page(&app, &t.viewer, "/console/runs?flow=orders").await;
        assert_eq!(listed(&first).len(), 50);
        assert!(link(&first, "← Newer").is_none());
        let older = link(&first, "Older →").expect("an older page");
        assert!(older.contains("flow=orders"), "{older}: filters are kept");
        let (status, second) = page(&app, &t.viewer, &older).await;
        assert_eq!(status, StatusCode::OK);
        // 54 orders runs: 50 on the first page, 4 on the second.
        assert_eq!(listed(&second), pick(&[0, 1, 3, 4]), "{mode:?}");
        assert!(link(&second, "Older →").is_none());
        let newer = link(&second, "← Newer").expect("a newer page");
        let (_, back) = page(&app, &t.viewer, &newer).await;
        assert_eq!(
            listed(&back),
            listed(&first),
            "{mode:?}: back to the first page"
        );
    }
}

#[tokio::test]
async fn odd_query_strings_are_reported_or_ignored_never_a_server_error() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let t = tenant(&app, "console-odd").await;
        let id = run(&app, t.id, t.pair, "orders", "#3001", RunStatus::Dead).await;
        for query in [
            "status=exploded",
            "pair=not-a-uuid",
            "pair=00000000-0000-0000-0000-000000000000",
            "flow=%00%FF",
            "from=yesterday&to=tomorrow",
            "from=2026-02-01&to=2026-01-01",
            "cursor=garbage",
            "cursor=1_2",
            "cursor=99999999999999999999_x",
            "before=garbage",
            "status=dead&status=failed",
            "shopify_order=%27%3B%20DROP%20TABLE%20runs%3B--",
            "%ZZ=%ZZ&&&=",
            "replayed=lots",
        ] {
            for path in ["/console/runs", "/console/dead-letters"] {
                let (status, html) = page(&app, &t.viewer, &format!("{path}?{query}")).await;
                assert_eq!(status, StatusCode::OK, "{mode:?}: {path}?{query}: {html}");
            }
        }
        let (_, html) = page(&app, &t.viewer, "/console/runs?status=exploded").await;
        assert!(
            html.contains("data-field=\"status\""),
            "{mode:?}: a field-level error"
        );
        assert_eq!(listed(&html), [id.to_string()], "the bad filter is ignored");
        let (_, html) = page(&app, &t.viewer, "/console/runs?cursor=garbage").await;
        assert!(html.contains("data-field=\"cursor\""));
        assert_eq!(listed(&html), [id.to_string()]);
        let (_, html) = page(&app, &t.viewer, "/console/runs?from=yesterday").await;
        assert!(html.contains("data-field=\"from\""));
        for path in ["/console/runs/not-a-run", "/console/runs/%00"] {
            let (status, _) = page(&app, &t.viewer, path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{mode:?}: {path}");
        }
    }
}

#[tokio::test]
async fn the_detail_page_shows_attempts_and_errors_and_replay_is_audited() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let t = tenant(&app, "console-detail").await;
        let dead = run(&app, t.id, t.pair, "orders", "#4001", RunStatus::Dead).await;
        let done = run(&app, t.id, t.pair, "orders", "#4002", RunStatus::Succeeded).await;
        let path = format!("/console/runs/{dead}");

        let (status, html) = page(&app, &t.viewer, &path).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {html}");
        assert!(
            html.contains("<title>Run #4001 · dead · Syncline</title>"),
            "{html}"
        );
        assert_eq!(
            html.matches("data-testid=\"attempt\"").count(),
            2,
            "{mode:?}"
        );
        for text in [
            "Attempt 1",
            "D365 answered 503",
            "transient",
            "Attempt 2",
            "unknown SKU ABC-#4001",
            "permanent",
            "took ",
            "&#34;email&#34;: &#34;[redacted]&#34;",
            "Main",
        ] {
            assert!(html.contains(text), "{mode:?}: the detail shows {text}");
        }
        assert!(
            !html.contains(&format!("action=\"/console/runs/{dead}/replay\"")),
            "viewers get no replay button"
        );
        let (_, html) = page(&app, &t.viewer, &format!("/console/runs/{done}")).await;
        assert!(html.contains("SO-4002") && html.contains("default-1"));
        assert!(
            html.contains("&#34;SalesOrderNumber&#34;"),
            "the output snapshot"
        );

        // A viewer may not replay; the run stays dead.
        let csrf = app.csrf(&t.viewer).await;
        let response = t
            .viewer
            .post(app.url(&format!("{path}/replay")))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{mode:?}");

        // Without the CSRF token, nothing happens either.
        let response = t
            .operator
            .post(app.url(&format!("{path}/replay")))
            .form(&[("csrf", "forged")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            app.store.run(t.id, dead).await.unwrap().unwrap().status,
            RunStatus::Dead
        );

        // An operator replays it: queued, audited, confirmed on the page.
        let (_, html) = page(&app, &t.operator, &path).await;
        assert!(html.contains(&format!("action=\"/console/runs/{dead}/replay\"")));
        let csrf = app.csrf(&t.operator).await;
        let response = t
            .operator
            .post(app.url(&format!("{path}/replay")))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{mode:?}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(location, format!("{path}?replayed=1"));
        let (_, html) = page(&app, &t.operator, &location).await;
        assert!(html.contains("Replayed: the run is queued again"), "{html}");
        assert_eq!(
            app.store.run(t.id, dead).await.unwrap().unwrap().status,
            RunStatus::Queued
        );
        let audited = audit_actions(&app, t.id, "run.replayed").await;
        assert_eq!(audited.len(), 1, "{mode:?}");
        assert_eq!(audited[0]["run_id"], dead.to_string());
        assert_eq!(audited[0]["previous_status"], "dead");

        // Replaying it again while queued is a conflict, explained on the page.
        let response = t
            .operator
            .post(app.url(&format!("{path}/replay")))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert!(response.text().await.unwrap().contains("in progress"));

        // From the dead letters, the replay goes back to the dead letters.
        let other = run(&app, t.id, t.pair, "orders", "#4003", RunStatus::Dead).await;
        let response = t
            .operator
            .post(app.url(&format!("/console/runs/{other}/replay")))
            .form(&[("csrf", csrf.as_str()), ("back", "dead-letters")])
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["location"],
            "/console/dead-letters?replayed=1"
        );
        let (_, html) = page(&app, &t.operator, "/console/dead-letters?replayed=1").await;
        assert!(html.contains("1 run was put back in the queue."));
        assert!(listed(&html).is_empty());
        assert!(html.contains("No dead letters"));
    }
}

#[tokio::test]
async fn bulk_replay_requeues_exactly_the_filtered_failed_runs() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let t = tenant(&app, "console-bulk").await;
        let other = pair(&app, t.id, "Other").await;
        let main_failed = [
            run(&app, t.id, t.pair, "orders", "#5001", RunStatus::Failed).await,
            run(&app, t.id, t.pair, "orders", "#5002", RunStatus::Failed).await,
        ];
        let customers_failed =
            run(&app, t.id, t.pair, "customers", "#5003", RunStatus::Failed).await;
        let other_failed = run(&app, t.id, other, "orders", "#5004", RunStatus::Failed).await;
        let main_dead = run(&app, t.id, t.pair, "orders", "#5005", RunStatus::Dead).await;
        let main_done = run(&app, t.id, t.pair, "orders", "#5006", RunStatus::Succeeded).await;
        let u = tenant(&app, "console-bulk-other").await;
        let foreign = run(&app, u.id, u.pair, "orders", "#5007", RunStatus::Failed).await;

        let query = format!("pair={}&flow=orders&status=failed", t.pair.0);
        let (_, html) = page(&app, &t.operator, &format!("/console/runs?{query}")).await;
        assert!(html.contains("Replay 2 matching runs"), "{mode:?}: {html}");
        let pair_id = t.pair.0.to_string();
        let form = |csrf: &str, status: &str| {
            vec![
                ("csrf".to_owned(), csrf.to_owned()),
                ("pair".to_owned(), pair_id.clone()),
                ("flow".to_owned(), "orders".to_owned()),
                ("status".to_owned(), status.to_owned()),
                ("from".to_owned(), String::new()),
                ("to".to_owned(), String::new()),
                ("shopify_order".to_owned(), String::new()),
                ("d365_order".to_owned(), String::new()),
            ]
        };

        // Viewers may not; a filter that is not failed or dead, or that does not parse, is
        // refused rather than widened. None of these change anything.
        let csrf = app.csrf(&t.viewer).await;
        let response = t
            .viewer
            .post(app.url("/console/runs/replay"))
            .form(&form(&csrf, "failed"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{mode:?}");
        let csrf = app.csrf(&t.operator).await;
        for status in ["succeeded", "", "exploded"] {
            let response = t
                .operator
                .post(app.url("/console/runs/replay"))
                .form(&form(&csrf, status))
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{mode:?}: status {status:?}"
            );
            assert!(
                response
                    .text()
                    .await
                    .unwrap()
                    .contains("data-field=\"status\"")
            );
        }
        let mut bad_pair = form(&csrf, "failed");
        bad_pair[1].1 = "not-a-pair".into();
        let response = t
            .operator
            .post(app.url("/console/runs/replay"))
            .form(&bad_pair)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(audit_actions(&app, t.id, "runs.replayed").await.is_empty());

        let response = t
            .operator
            .post(app.url("/console/runs/replay"))
            .form(&form(&csrf, "failed"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{mode:?}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.contains("replayed=2"), "{location}");
        assert!(location.contains("status=failed"), "{location}");
        let (_, html) = page(&app, &t.operator, &location).await;
        assert!(
            html.contains("2 runs were put back in the queue."),
            "{mode:?}"
        );

        let status_of = |tenant: TenantId, id: RunId| {
            let app = &app;
            async move { app.store.run(tenant, id).await.unwrap().unwrap().status }
        };
        for id in main_failed {
            assert_eq!(status_of(t.id, id).await, RunStatus::Queued, "{mode:?}");
        }
        for (id, expected) in [
            (customers_failed, RunStatus::Failed),
            (other_failed, RunStatus::Failed),
            (main_dead, RunStatus::Dead),
            (main_done, RunStatus::Succeeded),
        ] {
            assert_eq!(status_of(t.id, id).await, expected, "{mode:?}: untouched");
        }
        assert_eq!(status_of(u.id, foreign).await, RunStatus::Failed);
        let audited = audit_actions(&app, t.id, "runs.replayed").await;
        assert_eq!(audited.len(), 1, "{mode:?}");
        assert_eq!(audited[0]["count"], 2);
        assert_eq!(audited[0]["filter"]["status"], "failed");

        // From the dead letters, the filter is always `dead`, whatever the form says.
        let mut dead_form = form(&csrf, "failed");
        dead_form.push(("view".into(), "dead-letters".into()));
        let response = t
            .operator
            .post(app.url("/console/runs/replay"))
            .form(&dead_form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert!(
            response.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/console/dead-letters?")
        );
        assert_eq!(status_of(t.id, main_dead).await, RunStatus::Queued);
        assert_eq!(status_of(t.id, customers_failed).await, RunStatus::Failed);
    }
}

#[tokio::test]
async fn another_tenants_run_is_not_found_on_detail_and_replay() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let a = tenant(&app, "console-iso-a").await;
        let b = tenant(&app, "console-iso-b").await;
        let theirs = run(&app, b.id, b.pair, "orders", "#6001", RunStatus::Dead).await;
        let (status, html) = page(&app, &a.owner, &format!("/console/runs/{theirs}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{mode:?}");
        assert!(!html.contains("#6001"));
        let csrf = app.csrf(&a.owner).await;
        let response = a
            .owner
            .post(app.url(&format!("/console/runs/{theirs}/replay")))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{mode:?}");
        assert_eq!(
            app.store.run(b.id, theirs).await.unwrap().unwrap().status,
            RunStatus::Dead
        );
        // Nor does it show in A's lists, even filtered by B's pair or order.
        for path in [
            "/console/runs".to_owned(),
            "/console/dead-letters".to_owned(),
            format!("/console/runs?pair={}", b.pair.0),
            "/console/runs?shopify_order=%236001".to_owned(),
        ] {
            let (_, html) = page(&app, &a.owner, &path).await;
            assert!(listed(&html).is_empty(), "{mode:?}: {path}");
        }
        // And a bulk replay by B's pair in A's session requeues nothing of B's.
        let response = a
            .owner
            .post(app.url("/console/runs/replay"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("pair", &b.pair.0.to_string()),
                ("status", "dead"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert!(
            response.headers()["location"]
                .to_str()
                .unwrap()
                .contains("replayed=0")
        );
        assert_eq!(
            app.store.run(b.id, theirs).await.unwrap().unwrap().status,
            RunStatus::Dead
        );
        let (_, html) = page(&app, &a.owner, "/console").await;
        assert!(!html.contains("#6001") && !html.contains(&b.pair.0.to_string()));
    }
}

#[tokio::test]
async fn the_dashboard_shows_each_pairs_figures_and_a_chart() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let t = tenant(&app, "console-dash").await;

        let empty_tenant = app.tenant("console-dash-empty").await;
        let email = unique_email("lonely");
        app.user(&email, Some((empty_tenant, Role::Viewer)), false)
            .await;
        let lonely = app.session(&email).await;
        let (status, html) = page(&app, &lonely, "/console").await;
        assert_eq!(status, StatusCode::OK, "{mode:?}");
        assert!(
            html.contains("No integration pairs yet") && html.contains("href=\"/console/pairs\"")
        );
        assert!(html.contains("<svg") && html.contains("No runs in the last 24 hours"));
        assert!(html.contains("Team"));

        let other = pair(&app, t.id, "Quiet").await;
        app.store
            .set_pair_status(
                t.id,
                other.0,
                syncline_store::PairStatus::Paused,
                Some("D365 refused the credentials"),
            )
            .await
            .unwrap();
        run(&app, t.id, t.pair, "orders", "#7001", RunStatus::Succeeded).await;
        run(&app, t.id, t.pair, "orders", "#7002", RunStatus::Succeeded).await;
        run(&app, t.id, t.pair, "orders", "#7003", RunStatus::Succeeded).await;
        run(&app, t.id, t.pair, "orders", "#7005", RunStatus::Queued).await;
        run(&app, t.id, t.pair, "orders", "#7006", RunStatus::Retrying).await;
        // The most recent error is the pair's last error.
        let failed = run(&app, t.id, t.pair, "orders", "#7004", RunStatus::Dead).await;
        let u = tenant(&app, "console-dash-other").await;
        run(&app, u.id, u.pair, "orders", "#7999", RunStatus::Dead).await;

        let (status, html) = page(&app, &t.viewer, "/console").await;
        assert_eq!(status, StatusCode::OK, "{mode:?}");
        assert!(
            html.contains("<title>Dashboard · Syncline</title>"),
            "{html}"
        );
        let row = |pair: PairId| {
            let marker = format!("data-pair-id=\"{pair}\"");
            let start = html
                .find(&marker)
                .unwrap_or_else(|| panic!("no row for {pair}"));
            html[start..].split("</tr>").next().unwrap().to_owned()
        };
        let main = row(t.pair.0);
        for text in [
            "data-testid=\"events-today\">6<",
            // 3 of 4 finished runs succeeded; the dead one counts against.
            "data-testid=\"success-rate\">75 %<",
            "data-testid=\"backlog\"><a",
            ">2</a>",
            "unknown SKU ABC-#7004",
            &format!("href=\"/console/runs/{failed}\""),
            "status-draft",
        ] {
            assert!(main.contains(text), "{mode:?}: {text} in {main}");
        }
        assert!(!main.contains("never"), "a successful sync is shown");
        let quiet = row(other.0);
        for text in [
            "status-paused",
            "D365 refused the credentials",
            "data-testid=\"events-today\">0<",
            "data-testid=\"success-rate\">—<",
            "never",
        ] {
            assert!(quiet.contains(text), "{mode:?}: {text} in {quiet}");
        }
        assert!(
            !html.contains("#7999"),
            "another tenant's runs are not counted"
        );

        // The chart: accessible, with a legend, axis labels and this hour's stacked bar.
        for text in [
            "role=\"img\"",
            "<title id=\"chart-title\">Runs per hour in the last 24 hours, by outcome</title>",
            "6 runs in the last 24 hours: 3 succeeded, 1 failed or dead, 2 other",
            "Succeeded</text>",
            "Failed or dead</text>",
            "class=\"succeeded\"><title>",
            ": 3 succeeded</title>",
            ": 1 failed or dead</title>",
            ": 2 queued, running or retrying</title>",
        ] {
            assert!(html.contains(text), "{mode:?}: the chart has {text}");
        }
        assert_eq!(
            html.matches("<rect").count(),
            3 + 3,
            "{mode:?}: legend plus one bar of three"
        );
    }
}
