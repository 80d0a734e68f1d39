//! The runs API (`/api/v1/runs…`, `/api/v1/dead-letters`) through real HTTP, on both backends:
//! filters and cursor paging, detail with attempts, replays one by one and by filter, roles and
//! tenant isolation.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, Utc};
use common::{MODES, TestApp, spawn_app, unique_email};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use syncline_store::{
    ConnectionId, ConnectionKind, InboxInsert, InboxStatus, NewConnection, NewInboxEvent, NewPair,
    NewRun, PairId, Role, RunId, RunOutcome, RunStatus, TenantId,
};

/// A tenant with one API key per role and one pair.
struct Tenant {
    id: TenantId,
    keys: BTreeMap<Role, String>,
    pair: PairId,
    shop: ConnectionId,
}

async fn tenant(app: &TestApp, slug: &str) -> Tenant {
    let id = app.tenant(slug).await;
    let email = unique_email("owner");
    app.user(&email, Some((id, Role::Owner)), false).await;
    let owner = app.session(&email).await;
    let mut keys = BTreeMap::new();
    for role in Role::ALL {
        keys.insert(role, app.api_key(&owner, role.as_str()).await);
    }
    let (pair, shop) = pair(app, id, "Main").await;
    Tenant {
        id,
        keys,
        pair,
        shop,
    }
}

async fn pair(app: &TestApp, tenant: TenantId, name: &str) -> (PairId, ConnectionId) {
    let connection = |kind, name: String| NewConnection {
        kind,
        name,
        sandbox: true,
        settings: json!({"shop_domain": "runs.myshopify.com"}),
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

/// A new `orders/create` event of the shop.
async fn stored_event(
    app: &TestApp,
    tenant: TenantId,
    shop: ConnectionId,
    payload: Vec<u8>,
) -> syncline_store::InboxId {
    let event = NewInboxEvent {
        connection_id: shop,
        webhook_id: uuid::Uuid::new_v4().to_string(),
        topic: "orders/create".into(),
        shop_domain: "runs.myshopify.com".into(),
        api_version: "2026-07".into(),
        event_id: None,
        triggered_at: None,
        payload,
        status: InboxStatus::Received,
        error: None,
    };
    match app.store.insert_inbox(tenant, &event).await.unwrap() {
        InboxInsert::Stored(id) | InboxInsert::Duplicate(id) => id,
    }
}

/// A run of `flow` for Shopify order `order`, driven to `status` the way a worker would.
async fn run(
    app: &TestApp,
    tenant: TenantId,
    (pair, shop): (PairId, ConnectionId),
    flow: &str,
    order: &str,
    status: RunStatus,
) -> RunId {
    let store = &app.store;
    let inbox = stored_event(app, tenant, shop, b"{}".to_vec()).await;
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
    let finished = match status {
        RunStatus::Queued | RunStatus::Running => return id,
        RunStatus::Succeeded => RunOutcome {
            d365_ref: Some(format!("SO-{}", order.trim_start_matches('#'))),
            output_snapshot: Some(json!({"SalesOrderNumber": "SO"})),
            ..outcome(status)
        },
        RunStatus::Retrying => RunOutcome {
            next_attempt_at: Some(Utc::now() + Duration::hours(1)),
            error: Some("D365 answered 503".into()),
            error_class: Some("transient".into()),
            ..outcome(status)
        },
        RunStatus::Failed | RunStatus::Dead => RunOutcome {
            error: Some("unknown SKU ABC".into()),
            error_class: Some("permanent".into()),
            ..outcome(status)
        },
    };
    store.finish_run(tenant, id, &finished).await.unwrap();
    id
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    query: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, app.url(path))
        .bearer_auth(key)
        .query(query);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{path} answered {status} with non-JSON: {text}"));
    (status, value)
}

async fn get(app: &TestApp, path: &str, key: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
    call(app, Method::GET, path, key, query, None).await
}

fn ids(page: &Value) -> Vec<String> {
    page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["id"].as_str().unwrap().to_owned())
        .collect()
}

fn statuses(page: &Value) -> BTreeSet<String> {
    page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["status"].as_str().unwrap().to_owned())
        .collect()
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
async fn runs_are_listed_newest_first_filtered_and_paged_by_cursor() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let t = tenant(&app, "runs-list").await;
        let main = (t.pair, t.shop);
        let other = pair(&app, t.id, "Other").await;
        let plan = [
            (main, "orders", "#1001", RunStatus::Succeeded),
            (main, "orders", "#1002", RunStatus::Dead),
            (main, "customers", "#1003", RunStatus::Failed),
            (other, "orders", "#1004", RunStatus::Dead),
            (main, "orders", "#1005", RunStatus::Queued),
            (other, "orders", "#1006", RunStatus::Running),
            (main, "orders", "#1007", RunStatus::Retrying),
        ];
        let mut created = Vec::new();
        for (pair, flow, order, status) in plan {
            created.push(run(&app, t.id, pair, flow, order, status).await.to_string());
        }
        let newest_first: Vec<String> = created.iter().rev().cloned().collect();
        let viewer = &t.keys[&Role::Viewer];

        // Everything, newest first, in pages of 3: 3 + 3 + 1, each run once.
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("limit", "3")];
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor.as_str()));
            }
            let (status, page) = get(&app, "/api/v1/runs", viewer, &query).await;
            assert_eq!(status, StatusCode::OK, "{mode:?}: {page}");
            pages.push(ids(&page));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
            assert!(pages.len() < 10, "{mode:?}: the cursor never ends");
        }
        assert_eq!(
            pages.iter().map(Vec::len).collect::<Vec<_>>(),
            [3, 3, 1],
            "{mode:?}"
        );
        assert_eq!(pages.concat(), newest_first, "{mode:?}: newest first");

        // The default page holds them all; the view carries what an operator needs.
        let (_, all) = get(&app, "/api/v1/runs", viewer, &[]).await;
        assert_eq!(ids(&all), newest_first);
        assert_eq!(all["next_cursor"], Value::Null);
        let first = &all["runs"][6];
        assert_eq!(first["shopify_ref"], "#1001");
        assert_eq!(first["d365_ref"], "SO-1001");
        assert_eq!(first["status"], "succeeded");
        assert_eq!(first["pair_id"], t.pair.to_string());
        assert_eq!(
            first["input_snapshot"],
            json!({"name": "#1001", "email": "[redacted]"}),
            "snapshots are returned as stored"
        );

        // Each filter alone, and combined.
        let filtered = |query: Vec<(&'static str, String)>| {
            let app = &app;
            async move {
                let query: Vec<(&str, &str)> =
                    query.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let (status, page) = get(app, "/api/v1/runs", viewer, &query).await;
                assert_eq!(status, StatusCode::OK, "{query:?}: {page}");
                ids(&page)
            }
        };
        let pick = |indexes: &[usize]| -> Vec<String> {
            let mut picked: Vec<String> = indexes.iter().map(|i| created[*i].clone()).collect();
            picked.reverse();
            picked
        };
        assert_eq!(
            filtered(vec![("status", "dead".into())]).await,
            pick(&[1, 3])
        );
        assert_eq!(
            filtered(vec![("pair_id", other.0.to_string())]).await,
            pick(&[3, 5])
        );
        assert_eq!(
            filtered(vec![("flow", "customers".into())]).await,
            pick(&[2])
        );
        assert_eq!(
            filtered(vec![("shopify_order", "#1004".into())]).await,
            pick(&[3])
        );
        assert_eq!(
            filtered(vec![("d365_sales_order", "SO-1001".into())]).await,
            pick(&[0])
        );
        assert_eq!(
            filtered(vec![
                ("pair_id", t.pair.to_string()),
                ("flow", "orders".into()),
                ("status", "dead".into())
            ])
            .await,
            pick(&[1])
        );
        assert_eq!(
            filtered(vec![("status", String::new()), ("flow", String::new())]).await,
            newest_first,
            "empty form fields mean any"
        );
        // Time window: from the 3rd run (inclusive) to the 6th (exclusive).
        let created_at = |index: usize| {
            all["runs"][6 - index]["created_at"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            filtered(vec![("since", created_at(2)), ("until", created_at(5))]).await,
            pick(&[2, 3, 4]),
            "{mode:?}"
        );
        assert_eq!(
            filtered(vec![("since", "2000-01-01T00:00:00+02:00".into())]).await,
            newest_first
        );
        assert!(
            filtered(vec![("until", "2000-01-01T00:00:00Z".into())])
                .await
                .is_empty()
        );
        // Paging keeps the filter.
        let (_, page) = get(
            &app,
            "/api/v1/runs",
            viewer,
            &[("status", "dead"), ("limit", "1")],
        )
        .await;
        assert_eq!(ids(&page), pick(&[3]));
        let cursor = page["next_cursor"].as_str().unwrap().to_owned();
        let (_, page) = get(
            &app,
            "/api/v1/runs",
            viewer,
            &[("status", "dead"), ("limit", "1"), ("cursor", &cursor)],
        )
        .await;
        assert_eq!(ids(&page), pick(&[1]));
        assert_eq!(page["next_cursor"], Value::Null);

        // Bad values are 400s that say what is wrong.
        for (query, mention) in [
            (vec![("status", "broken")], "status"),
            (vec![("since", "yesterday")], "since"),
            (vec![("until", "2026-13-01T00:00:00Z")], "until"),
            (vec![("pair_id", "not-a-uuid")], "pair id"),
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "501")], "limit"),
            (vec![("limit", "many")], "limit"),
            (vec![("cursor", "garbage")], "cursor"),
            (
                vec![
                    ("since", "2026-02-01T00:00:00Z"),
                    ("until", "2026-01-01T00:00:00Z"),
                ],
                "since",
            ),
        ] {
            let (status, body) = get(&app, "/api/v1/runs", viewer, &query).await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{mode:?}: {query:?}: {body}"
            );
            assert_eq!(body["error"]["code"], "bad_request");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(mention), "{query:?}: {message}");
        }
        let (status, _) = get(&app, "/api/v1/runs", viewer, &[("limit", "500")]).await;
        assert_eq!(status, StatusCode::OK);
        // Without credentials, nothing.
        let response = reqwest::get(app.url("/api/v1/runs")).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn runs_without_a_stored_snapshot_show_their_event_with_personal_data_masked() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let t = tenant(&app, "runs-input").await;
        // Workers store no input snapshot: the event is the input.
        let mut ids = Vec::new();
        for (number, email) in [("#3001", "ada@example.com"), ("#3002", "alan@example.com")] {
            let payload = json!({
                "name": number,
                "email": email,
                "customer": { "first_name": "Ada", "last_name": "Lovelace" },
                "line_items": [{ "sku": "SKU-1", "quantity": 2 }],
            });
            let payload = serde_json::to_vec(&payload).unwrap();
            let inbox = stored_event(&app, t.id, t.shop, payload).await;
            let (run, _) = app
                .store
                .create_run(
                    t.id,
                    &NewRun {
                        pair_id: t.pair,
                        inbox_id: inbox,
                        flow: "orders".into(),
                        shopify_ref: Some(number.into()),
                        input_snapshot: None,
                    },
                )
                .await
                .unwrap();
            ids.push((run.id, number));
        }
        let viewer = &t.keys[&Role::Viewer];
        let masked = |number: &str| {
            json!({
                "name": number,
                "email": "[redacted]",
                "customer": { "first_name": "[redacted]", "last_name": "[redacted]" },
                "line_items": [{ "sku": "SKU-1", "quantity": 2 }],
            })
        };

        let (status, page) = get(&app, "/api/v1/runs", viewer, &[]).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {page}");
        let listed: Vec<(String, Value)> = page["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|run| {
                (
                    run["id"].as_str().unwrap().to_owned(),
                    run["input_snapshot"].clone(),
                )
            })
            .collect();
        for (id, number) in &ids {
            let shown = listed.iter().find(|(listed, _)| *listed == id.to_string());
            assert_eq!(
                shown.map(|(_, input)| input),
                Some(&masked(number)),
                "{mode:?}"
            );
        }

        let (id, number) = ids[0];
        let (status, detail) = get(&app, &format!("/api/v1/runs/{id}"), viewer, &[]).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {detail}");
        assert_eq!(detail["input_snapshot"], masked(number), "{mode:?}");
        assert!(
            !detail.to_string().contains("example.com"),
            "{mode:?}: an e-mail address leaked: {detail}"
        );
    }
}

#[tokio::test]
async fn a_run_shows_its_attempts_and_only_a_finished_one_is_replayed() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let t = tenant(&app, "runs-detail").await;
        let main = (t.pair, t.shop);
        let (viewer, operator) = (&t.keys[&Role::Viewer], &t.keys[&Role::Operator]);

        // Two attempts: a transient failure, then a permanent one.
        let id = run(&app, t.id, main, "orders", "#2001", RunStatus::Queued).await;
        let lease = Duration::seconds(300);
        app.store.claim_run(t.id, id, lease).await.unwrap().unwrap();
        app.store
            .finish_run(
                t.id,
                id,
                &RunOutcome {
                    error: Some("D365 answered 503".into()),
                    error_class: Some("transient".into()),
                    ..outcome(RunStatus::Retrying)
                },
            )
            .await
            .unwrap();
        app.store.claim_run(t.id, id, lease).await.unwrap().unwrap();
        app.store
            .finish_run(
                t.id,
                id,
                &RunOutcome {
                    error: Some("unknown SKU ABC".into()),
                    error_class: Some("permanent".into()),
                    ..outcome(RunStatus::Dead)
                },
            )
            .await
            .unwrap();

        let (status, detail) = get(&app, &format!("/api/v1/runs/{id}"), viewer, &[]).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {detail}");
        assert_eq!(detail["id"], id.to_string());
        assert_eq!(detail["status"], "dead");
        assert_eq!(detail["attempts"].as_array().unwrap().len(), 2);
        assert_eq!(detail["error"], "unknown SKU ABC");
        assert_eq!(detail["error_class"], "permanent");
        assert_eq!(
            detail["input_snapshot"],
            json!({"name": "#2001", "email": "[redacted]"})
        );
        let attempts = detail["attempts"].as_array().unwrap();
        assert_eq!(
            attempts
                .iter()
                .map(|a| (
                    a["number"].as_i64().unwrap(),
                    a["outcome"].as_str().unwrap()
                ))
                .collect::<Vec<_>>(),
            [(1, "retrying"), (2, "dead")],
            "{mode:?}"
        );
        assert_eq!(attempts[0]["error_class"], "transient");
        assert!(attempts[1]["finished_at"].is_string());

        // A viewer reads but does not replay.
        let replay = format!("/api/v1/runs/{id}/replay");
        let (status, body) = call(&app, Method::POST, &replay, viewer, &[], None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{mode:?}: {body}");
        assert_eq!(body["error"]["code"], "forbidden");
        assert_eq!(
            app.store.run(t.id, id).await.unwrap().unwrap().status,
            RunStatus::Dead
        );

        // An operator replays the dead run: queued again, attempts kept, audited.
        let (status, replayed) = call(&app, Method::POST, &replay, operator, &[], None).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {replayed}");
        assert_eq!(replayed["status"], "queued");
        assert_eq!(replayed["id"], id.to_string());
        let stored = app.store.run(t.id, id).await.unwrap().unwrap();
        assert_eq!((stored.status, stored.attempts), (RunStatus::Queued, 2));
        let audited = audit_actions(&app, t.id, "run.replayed").await;
        assert_eq!(audited.len(), 1, "{mode:?}");
        assert_eq!(audited[0]["run_id"], id.to_string());
        assert_eq!(audited[0]["previous_status"], "dead");

        // Queued again, it is in progress: a second replay is a conflict.
        let (status, body) = call(&app, Method::POST, &replay, operator, &[], None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{mode:?}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("in progress"),
            "{body}"
        );

        // So is a running one; it keeps running.
        let running = run(&app, t.id, main, "orders", "#2002", RunStatus::Running).await;
        let (status, body) = call(
            &app,
            Method::POST,
            &format!("/api/v1/runs/{running}/replay"),
            operator,
            &[],
            None,
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{mode:?}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("in progress") && message.contains("running"),
            "{message}"
        );
        assert_eq!(
            app.store.run(t.id, running).await.unwrap().unwrap().status,
            RunStatus::Running
        );
        assert_eq!(audit_actions(&app, t.id, "run.replayed").await.len(), 1);

        // A succeeded run may be replayed too (e.g. after a mapping fix).
        let done = run(&app, t.id, main, "orders", "#2003", RunStatus::Succeeded).await;
        let (status, body) = call(
            &app,
            Method::POST,
            &format!("/api/v1/runs/{done}/replay"),
            operator,
            &[],
            None,
        )
        .await;
        assert_eq!(
            (status, body["status"].clone()),
            (StatusCode::OK, json!("queued"))
        );

        // Unknown and malformed ids.
        let unknown = RunId::new();
        for method in [Method::GET, Method::POST] {
            let path = if method == Method::GET {
                format!("/api/v1/runs/{unknown}")
            } else {
                format!("/api/v1/runs/{unknown}/replay")
            };
            let (status, body) = call(&app, method, &path, operator, &[], None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        }
        let (status, body) = get(&app, "/api/v1/runs/not-a-run", viewer, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not a run id")
        );
    }
}

#[tokio::test]
async fn bulk_replay_requeues_what_the_filter_matches_and_dead_letters_list_only_dead_runs() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let t = tenant(&app, "runs-bulk").await;
        let main = (t.pair, t.shop);
        let other = pair(&app, t.id, "Other").await;
        let mut dead = Vec::new();
        for (pair, order) in [(main, "#3001"), (main, "#3002"), (other, "#3003")] {
            dead.push(run(&app, t.id, pair, "orders", order, RunStatus::Dead).await);
        }
        for (order, status) in [
            ("#3004", RunStatus::Failed),
            ("#3005", RunStatus::Failed),
            ("#3006", RunStatus::Succeeded),
            ("#3007", RunStatus::Running),
            ("#3008", RunStatus::Queued),
            ("#3009", RunStatus::Retrying),
        ] {
            run(&app, t.id, main, "orders", order, status).await;
        }
        let (viewer, operator) = (&t.keys[&Role::Viewer], &t.keys[&Role::Operator]);

        // Dead letters: only dead runs, newest first, with the list's filters and paging.
        let (status, letters) = get(&app, "/api/v1/dead-letters", viewer, &[]).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {letters}");
        let dead_newest_first: Vec<String> = dead.iter().rev().map(RunId::to_string).collect();
        assert_eq!(ids(&letters), dead_newest_first, "{mode:?}");
        assert_eq!(statuses(&letters), BTreeSet::from(["dead".to_owned()]));
        let (_, letters) = get(
            &app,
            "/api/v1/dead-letters",
            viewer,
            &[("pair_id", &other.0.to_string())],
        )
        .await;
        assert_eq!(ids(&letters), [dead[2].to_string()]);
        let (_, letters) = get(&app, "/api/v1/dead-letters", viewer, &[("limit", "2")]).await;
        assert_eq!(ids(&letters), dead_newest_first[..2]);
        let cursor = letters["next_cursor"].as_str().unwrap().to_owned();
        let (_, letters) = get(
            &app,
            "/api/v1/dead-letters",
            viewer,
            &[("limit", "2"), ("cursor", &cursor)],
        )
        .await;
        assert_eq!(ids(&letters), dead_newest_first[2..]);
        assert_eq!(letters["next_cursor"], Value::Null);
        let (status, _) = get(&app, "/api/v1/dead-letters", viewer, &[("since", "soon")]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // Bad bulk requests change nothing.
        let counts = app.store.run_counts(t.id, None).await.unwrap();
        let bulk = |key: &str, body: Value| {
            let app = &app;
            let key = key.to_owned();
            async move {
                call(
                    app,
                    Method::POST,
                    "/api/v1/runs/replay",
                    &key,
                    &[],
                    Some(body),
                )
                .await
            }
        };
        let (status, body) = bulk(viewer, json!({"status": "dead"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{mode:?}: {body}");
        for (body, mention) in [
            (json!({"status": "running"}), "in progress"),
            (json!({"status": "sleeping"}), "status"),
            (json!({"stauts": "dead"}), "stauts"),
            (json!({"since": "last week"}), "since"),
            (json!({"pair_id": "nope"}), "pair id"),
            (json!({"status": "dead", "limit": 0}), "limit"),
            (json!({"status": "dead", "limit": 10_001}), "limit"),
        ] {
            let (status, answer) = bulk(operator, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{mode:?}: {body}: {answer}"
            );
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains(mention), "{body}: {message}");
        }
        assert_eq!(
            sorted(app.store.run_counts(t.id, None).await.unwrap()),
            sorted(counts),
            "{mode:?}: nothing changed"
        );

        // By status: exactly the dead runs come back, queued.
        let (status, body) = bulk(operator, json!({"status": "dead"})).await;
        assert_eq!(
            (status, body.clone()),
            (StatusCode::OK, json!({"replayed": 3})),
            "{mode:?}"
        );
        for id in &dead {
            assert_eq!(
                app.store.run(t.id, *id).await.unwrap().unwrap().status,
                RunStatus::Queued
            );
        }
        let (_, letters) = get(&app, "/api/v1/dead-letters", viewer, &[]).await;
        assert!(ids(&letters).is_empty(), "{mode:?}: {letters}");
        let audited = audit_actions(&app, t.id, "runs.replayed").await;
        assert_eq!(audited.len(), 1, "{mode:?}");
        assert_eq!(audited[0]["count"], 3);
        assert_eq!(audited[0]["filter"]["status"], "dead");

        // A limit caps it; a filter nothing matches replays nothing.
        let (_, body) = bulk(operator, json!({"status": "failed", "limit": 1})).await;
        assert_eq!(body, json!({"replayed": 1}));
        let (_, body) = bulk(operator, json!({"shopify_order": "#9999"})).await;
        assert_eq!(body, json!({"replayed": 0}));
        // No filter: every finished run left (one failed, one succeeded); in-progress ones stay.
        let (_, body) = bulk(operator, json!({})).await;
        assert_eq!(body, json!({"replayed": 2}), "{mode:?}");
        assert_eq!(
            sorted(app.store.run_counts(t.id, None).await.unwrap()),
            sorted(vec![
                (RunStatus::Queued, 7),
                (RunStatus::Running, 1),
                (RunStatus::Retrying, 1),
            ]),
            "{mode:?}"
        );
        assert_eq!(audit_actions(&app, t.id, "runs.replayed").await.len(), 4);
    }
}

fn sorted(mut counts: Vec<(RunStatus, i64)>) -> Vec<(&'static str, i64)> {
    counts.retain(|(_, count)| *count > 0);
    let mut named: Vec<_> = counts
        .into_iter()
        .map(|(status, count)| (status.as_str(), count))
        .collect();
    named.sort_unstable();
    named
}

#[tokio::test]
async fn another_tenants_runs_are_not_found_not_listed_and_not_replayed() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let a = tenant(&app, "runs-a").await;
        let b = tenant(&app, "runs-b").await;
        let mine = run(
            &app,
            a.id,
            (a.pair, a.shop),
            "orders",
            "#4001",
            RunStatus::Dead,
        )
        .await;
        let theirs = run(
            &app,
            b.id,
            (b.pair, b.shop),
            "orders",
            "#4002",
            RunStatus::Dead,
        )
        .await;
        let key = &a.keys[&Role::Owner];

        let (status, _) = get(&app, &format!("/api/v1/runs/{theirs}"), key, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{mode:?}");
        let (status, _) = call(
            &app,
            Method::POST,
            &format!("/api/v1/runs/{theirs}/replay"),
            key,
            &[],
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{mode:?}");
        for path in ["/api/v1/runs", "/api/v1/dead-letters"] {
            let (_, page) = get(&app, path, key, &[]).await;
            assert_eq!(ids(&page), [mine.to_string()], "{mode:?}: {path}");
            // Even when asked for B's pair by id.
            let (_, page) = get(&app, path, key, &[("pair_id", &b.pair.to_string())]).await;
            assert!(ids(&page).is_empty(), "{mode:?}: {path}");
        }
        let (_, body) = call(
            &app,
            Method::POST,
            "/api/v1/runs/replay",
            key,
            &[],
            Some(json!({"pair_id": b.pair.to_string()})),
        )
        .await;
        assert_eq!(body, json!({"replayed": 0}));
        let (_, body) = call(
            &app,
            Method::POST,
            "/api/v1/runs/replay",
            key,
            &[],
            Some(json!({})),
        )
        .await;
        assert_eq!(body, json!({"replayed": 1}), "{mode:?}: only A's own run");
        assert_eq!(
            app.store.run(b.id, theirs).await.unwrap().unwrap().status,
            RunStatus::Dead,
            "{mode:?}: B's run untouched"
        );
        assert!(audit_actions(&app, b.id, "run.replayed").await.is_empty());
        assert!(audit_actions(&app, b.id, "runs.replayed").await.is_empty());
    }
}
