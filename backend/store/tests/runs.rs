//! Runs and links behave the same on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use chrono::{Duration, Utc};
use syncline_store::testing;
use syncline_store::{
    InboxInsert, InboxStatus, NewInboxEvent, NewRun, RunFilter, RunOutcome, RunStatus, Store,
    TenantId,
};

async fn fixture(
    store: &Store,
    slug: &str,
) -> (
    TenantId,
    syncline_store::PairId,
    syncline_store::ConnectionId,
) {
    let (tenant, pair) = testing::tenant_with_pair(store, slug, "sandbox").await;
    (tenant, pair.id, pair.shopify_connection_id)
}

async fn event(
    store: &Store,
    tenant: TenantId,
    connection: syncline_store::ConnectionId,
    webhook: &str,
) -> syncline_store::InboxId {
    let new = NewInboxEvent {
        connection_id: connection,
        webhook_id: webhook.into(),
        topic: "orders/create".into(),
        shop_domain: "s.myshopify.com".into(),
        api_version: "2026-07".into(),
        event_id: None,
        triggered_at: None,
        payload: b"{}".to_vec(),
        status: InboxStatus::Received,
        error: None,
    };
    match store.insert_inbox(tenant, &new).await.unwrap() {
        InboxInsert::Stored(id) | InboxInsert::Duplicate(id) => id,
    }
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

#[tokio::test]
async fn runs_are_created_once_claimed_atomically_retried_and_listed() {
    for db in testing::both().await {
        let store = &db.store;
        let backend = store.backend();
        let (tenant, pair, connection) = fixture(store, "a").await;
        let (other_tenant, _, _) = fixture(store, "b").await;
        let inbox = event(store, tenant, connection, "w1").await;
        let new = NewRun {
            pair_id: pair,
            inbox_id: inbox,
            flow: "orders".into(),
            shopify_ref: Some("#1001".into()),
            input_snapshot: Some(serde_json::json!({"name": "#1001"})),
        };
        let (run, created) = store.create_run(tenant, &new).await.unwrap();
        assert!(created && run.status == RunStatus::Queued, "{backend:?}");
        let (again, created) = store.create_run(tenant, &new).await.unwrap();
        assert!(
            !created && again.id == run.id,
            "{backend:?}: one run per (pair, event, flow)"
        );

        let lease = Duration::seconds(30);
        let claimed = store
            .claim_run(tenant, run.id, lease)
            .await
            .unwrap()
            .expect("due");
        assert_eq!((claimed.status, claimed.attempts), (RunStatus::Running, 1));
        assert!(
            store
                .claim_run(tenant, run.id, lease)
                .await
                .unwrap()
                .is_none(),
            "{backend:?}: a held run cannot be claimed twice"
        );
        assert!(
            store
                .claim_run(other_tenant, run.id, lease)
                .await
                .unwrap()
                .is_none(),
            "another tenant cannot claim it"
        );

        let retry = RunOutcome {
            next_attempt_at: Some(Utc::now() - Duration::seconds(1)),
            error: Some("D365 answered 503".into()),
            error_class: Some("transient".into()),
            ..outcome(RunStatus::Retrying)
        };
        store.finish_run(tenant, run.id, &retry).await.unwrap();
        assert!(
            store
                .due_runs(100, Duration::seconds(60), false)
                .await
                .unwrap()
                .contains(&(tenant, run.id)),
            "{backend:?}: a due retry is swept"
        );
        store
            .claim_run(tenant, run.id, lease)
            .await
            .unwrap()
            .expect("due again");
        let done = RunOutcome {
            d365_ref: Some("SO-000042".into()),
            mapping_version: Some("default-1".into()),
            ..outcome(RunStatus::Succeeded)
        };
        store.finish_run(tenant, run.id, &done).await.unwrap();
        let finished = store.run(tenant, run.id).await.unwrap().unwrap();
        assert_eq!(
            (
                finished.status,
                finished.attempts,
                finished.d365_ref.as_deref()
            ),
            (RunStatus::Succeeded, 2, Some("SO-000042"))
        );
        let attempts = store.run_attempts(tenant, run.id).await.unwrap();
        let outcomes: Vec<_> = attempts
            .iter()
            .map(|a| a.outcome.clone().unwrap())
            .collect();
        assert_eq!(outcomes, ["retrying", "succeeded"], "{backend:?}");
        assert_eq!(attempts[0].error_class.as_deref(), Some("transient"));
        assert!(
            !store
                .due_runs(100, Duration::seconds(60), false)
                .await
                .unwrap()
                .contains(&(tenant, run.id))
        );

        // An expired lease (a crashed worker) makes a running run claimable again.
        let second = store
            .create_run(
                tenant,
                &NewRun {
                    inbox_id: event(store, tenant, connection, "w2").await,
                    ..new.clone()
                },
            )
            .await
            .unwrap()
            .0;
        store
            .claim_run(tenant, second.id, Duration::milliseconds(-1))
            .await
            .unwrap()
            .expect("first claim");
        let reclaimed = store
            .claim_run(tenant, second.id, lease)
            .await
            .unwrap()
            .expect("lease expired");
        assert_eq!(reclaimed.attempts, 2);
        store
            .finish_run(
                tenant,
                second.id,
                &RunOutcome {
                    error: Some("unknown SKU ABC".into()),
                    error_class: Some("permanent".into()),
                    ..outcome(RunStatus::Dead)
                },
            )
            .await
            .unwrap();
        let third = store
            .create_run(
                tenant,
                &NewRun {
                    inbox_id: event(store, tenant, connection, "w3").await,
                    ..new.clone()
                },
            )
            .await
            .unwrap()
            .0;

        let dead = store
            .list_runs(
                tenant,
                &RunFilter {
                    status: Some(RunStatus::Dead),
                    ..RunFilter::default()
                },
                None,
                50,
            )
            .await
            .unwrap();
        assert_eq!(
            dead.runs.iter().map(|r| r.id).collect::<Vec<_>>(),
            [second.id],
            "{backend:?}"
        );
        let by_ref = store
            .list_runs(
                tenant,
                &RunFilter {
                    d365_ref: Some("SO-000042".into()),
                    ..RunFilter::default()
                },
                None,
                50,
            )
            .await
            .unwrap();
        assert_eq!(by_ref.runs.len(), 1);
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .list_runs(
                    tenant,
                    &RunFilter {
                        pair_id: Some(pair),
                        ..RunFilter::default()
                    },
                    cursor.as_deref(),
                    1,
                )
                .await
                .unwrap();
            seen.extend(page.runs.iter().map(|r| r.id));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(
            seen,
            [third.id, second.id, run.id],
            "{backend:?}: cursor pages, newest first, each once"
        );
        assert!(
            store
                .list_runs(other_tenant, &RunFilter::default(), None, 50)
                .await
                .unwrap()
                .runs
                .is_empty()
        );

        let replayed = store.requeue_run(tenant, second.id).await.unwrap();
        assert_eq!(replayed.status, RunStatus::Queued);
        assert!(
            store.requeue_run(tenant, third.id).await.is_err(),
            "a queued run is not replayed"
        );

        assert_eq!(
            store
                .put_link(tenant, pair, "order", "820982911946154508", "SO-000042")
                .await
                .unwrap(),
            "SO-000042"
        );
        assert_eq!(
            store
                .put_link(tenant, pair, "order", "820982911946154508", "SO-000043")
                .await
                .unwrap(),
            "SO-000042",
            "{backend:?}: the first link wins"
        );
        assert_eq!(store.link(tenant, pair, "order", "1").await.unwrap(), None);
    }
}

#[tokio::test]
async fn the_sweeper_skips_fresh_hand_offs_unless_forced_and_link_claims_admit_one_creator() {
    for db in testing::both().await {
        let store = &db.store;
        let backend = store.backend();
        let (tenant, pair, connection) = fixture(store, "sweep").await;
        let stale = Duration::seconds(60);
        let (run, _) = store
            .create_run(
                tenant,
                &NewRun {
                    pair_id: pair,
                    inbox_id: event(store, tenant, connection, "s1").await,
                    flow: "orders".into(),
                    shopify_ref: Some("#1001".into()),
                    input_snapshot: None,
                },
            )
            .await
            .unwrap();
        assert!(
            store.due_runs(100, stale, false).await.unwrap().is_empty(),
            "{backend:?}: a run just handed to the dispatcher is not handed again"
        );
        assert_eq!(
            store.due_runs(100, stale, true).await.unwrap(),
            vec![(tenant, run.id)],
            "{backend:?}: after a restart every due run is handed out"
        );
        assert!(
            store
                .due_runs(100, Duration::milliseconds(-1), false)
                .await
                .unwrap()
                .contains(&(tenant, run.id)),
            "{backend:?}: a stale hand-off is repeated"
        );

        use syncline_store::LinkClaim;
        // Orders claim with `claim_new_link` (insert first), customers with `claim_link` (read
        // first): both must agree.
        let claim = |owner: &'static str, stale: Duration| async move {
            store
                .claim_new_link(tenant, pair, "sales_order", "42", owner, stale)
                .await
                .unwrap()
        };
        assert_eq!(claim("run-a", stale).await, LinkClaim::Claimed);
        assert_eq!(
            claim("run-a", stale).await,
            LinkClaim::Claimed,
            "re-entrant"
        );
        assert_eq!(claim("run-b", stale).await, LinkClaim::Busy);
        assert_eq!(
            store.link(tenant, pair, "sales_order", "42").await.unwrap(),
            None,
            "a claim is not a link"
        );
        // run-a died: after `stale`, run-b takes over, and run-a can no longer complete.
        assert_eq!(
            claim("run-b", Duration::milliseconds(-1)).await,
            LinkClaim::Claimed
        );
        assert!(
            store
                .complete_link(tenant, pair, "sales_order", "42", "run-a", "000001")
                .await
                .is_err()
        );
        store
            .complete_link(tenant, pair, "sales_order", "42", "run-b", "000002")
            .await
            .unwrap();
        assert_eq!(
            claim("run-c", stale).await,
            LinkClaim::Linked("000002".into()),
            "{backend:?}"
        );
        // A claim by a run that is no longer at work (not running, or its lease ran out) is
        // taken over at once; one by a working run is respected.
        let owner = run.id.to_string();
        let claim_by_run = |owner: String| async move {
            store
                .claim_link(tenant, pair, "customer", "9", &owner, stale)
                .await
                .unwrap()
        };
        store
            .claim_run(tenant, run.id, stale)
            .await
            .unwrap()
            .expect("claimable");
        assert_eq!(claim_by_run(owner.clone()).await, LinkClaim::Claimed);
        assert_eq!(
            claim_by_run("someone-else".into()).await,
            LinkClaim::Busy,
            "{backend:?}: the owner is running with a live lease"
        );
        store
            .finish_run(tenant, run.id, &outcome(RunStatus::Retrying))
            .await
            .unwrap();
        assert_eq!(
            claim_by_run("someone-else".into()).await,
            LinkClaim::Claimed,
            "{backend:?}: the owner stopped working on it"
        );

        // A released claim lets the next run try at once.
        assert_eq!(
            store
                .claim_link(tenant, pair, "customer", "7", "run-a", stale)
                .await
                .unwrap(),
            LinkClaim::Claimed
        );
        store
            .release_link(tenant, pair, "customer", "7", "run-a")
            .await
            .unwrap();
        assert_eq!(
            store
                .claim_link(tenant, pair, "customer", "7", "run-b", stale)
                .await
                .unwrap(),
            LinkClaim::Claimed
        );
        assert_eq!(
            store
                .claim_new_link(tenant, pair, "customer", "7", "run-c", stale)
                .await
                .unwrap(),
            LinkClaim::Busy,
            "{backend:?}: insert-first sees the other claim"
        );
        store
            .complete_link(tenant, pair, "customer", "7", "run-b", "C-7")
            .await
            .unwrap();
        assert_eq!(
            store
                .claim_new_link(tenant, pair, "customer", "7", "run-c", stale)
                .await
                .unwrap(),
            LinkClaim::Linked("C-7".into()),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_run_reads_its_context_in_one_go_and_a_finish_meters_its_sync_once() {
    for db in testing::both().await {
        let store = &db.store;
        let backend = store.backend();
        let (tenant, pair) = testing::tenant_with_pair(store, "finish", "sandbox").await;
        let fixture = (tenant, pair.id, pair.shopify_connection_id);
        let first = run_in(store, fixture, "#1", RunStatus::Queued).await;
        let context = store.run_context(tenant, first).await.unwrap().unwrap();
        assert_eq!(context.pair.id, pair.id, "{backend:?}");
        assert_eq!(context.d365.id, pair.d365_connection_id, "{backend:?}");
        assert_eq!(context.d365.kind, syncline_store::ConnectionKind::D365);
        assert_eq!(context.event.topic, "orders/create");
        assert_eq!(context.event.payload, b"{}");
        assert_eq!(context.hold, None);
        let other_tenant = testing::tenant_with_pair(store, "finish-other", "sandbox")
            .await
            .0;
        assert!(
            store
                .run_context(other_tenant, first)
                .await
                .unwrap()
                .is_none(),
            "{backend:?}: another tenant's run has no context"
        );

        // Two runs syncing the same record (a duplicated webhook, a replay): one count.
        let second = run_in(store, fixture, "#1 again", RunStatus::Queued).await;
        let at = Utc::now();
        let mut counted = Vec::new();
        for id in [first, second] {
            let claimed = store
                .claim_run(tenant, id, Duration::seconds(60))
                .await
                .unwrap();
            assert_eq!(claimed.map(|run| run.attempts), Some(1), "{backend:?}");
            let billable = syncline_store::BillableEvent {
                pair_id: pair.id,
                flow: "orders",
                action: "create",
                record_id: "1001",
                run_id: id,
                at,
            };
            let done = RunOutcome {
                d365_ref: Some("SO-1".into()),
                ..outcome(RunStatus::Succeeded)
            };
            counted.push(
                store
                    .finish_run_billed(tenant, id, &done, Some(&billable))
                    .await
                    .unwrap(),
            );
            let run = store.run(tenant, id).await.unwrap().unwrap();
            assert_eq!(run.status, RunStatus::Succeeded, "{backend:?}");
            assert_eq!(run.d365_ref.as_deref(), Some("SO-1"));
            let attempts = store.run_attempts(tenant, id).await.unwrap();
            assert_eq!(attempts.len(), 1, "{backend:?}");
            assert_eq!(attempts[0].outcome.as_deref(), Some("succeeded"));
            assert!(attempts[0].finished_at.is_some());
        }
        assert_eq!(counted, [true, false], "{backend:?}");
        let transactions = || async {
            let day = at.date_naive();
            let usage = store.usage(tenant, day, day + chrono::Days::new(1)).await;
            usage.unwrap().iter().map(|u| u.transactions).sum::<i64>()
        };
        assert_eq!(transactions().await, 1, "{backend:?}");
        // A run that is gone is not finished, and meters nothing.
        let gone = syncline_store::RunId::new();
        let billable = syncline_store::BillableEvent {
            pair_id: pair.id,
            flow: "orders",
            action: "create",
            record_id: "1002",
            run_id: gone,
            at,
        };
        let result = store
            .finish_run_billed(
                tenant,
                gone,
                &outcome(RunStatus::Succeeded),
                Some(&billable),
            )
            .await;
        assert!(
            matches!(result, Err(syncline_store::StoreError::NotFound)),
            "{backend:?}: {result:?}"
        );
        assert_eq!(
            transactions().await,
            1,
            "{backend:?}: nothing was metered for the missing run"
        );
    }
}

/// A run for a new event, driven to `status` the way a worker would.
async fn run_in(
    store: &Store,
    (tenant, pair, connection): (
        TenantId,
        syncline_store::PairId,
        syncline_store::ConnectionId,
    ),
    order: &str,
    status: RunStatus,
) -> syncline_store::RunId {
    let inbox = event(store, tenant, connection, &uuid::Uuid::new_v4().to_string()).await;
    let (run, _) = store
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
        .unwrap();
    if status == RunStatus::Queued {
        return run.id;
    }
    store
        .claim_run(tenant, run.id, Duration::seconds(60))
        .await
        .unwrap()
        .unwrap();
    let finished = match status {
        RunStatus::Queued | RunStatus::Running => return run.id,
        RunStatus::Succeeded => outcome(status),
        _ => RunOutcome {
            error: Some(format!("{order} broke")),
            error_class: Some("permanent".into()),
            ..outcome(status)
        },
    };
    store.finish_run(tenant, run.id, &finished).await.unwrap();
    run.id
}

#[tokio::test]
async fn activity_is_counted_per_pair_and_per_hour_and_pages_go_both_ways() {
    for db in testing::both().await {
        let store = &db.store;
        let backend = store.backend();
        let a = fixture(store, "act-a").await;
        let b = fixture(store, "act-b").await;
        let now = Utc::now();
        let day_start = now - Duration::hours(1);

        let empty = store.run_activity(a.0, day_start, now).await.unwrap();
        assert!(empty.pairs.is_empty(), "{backend:?}");
        assert_eq!(empty.hours.len(), 24);
        assert!(
            empty
                .hours
                .iter()
                .all(|h| h.succeeded + h.failed + h.other == 0)
        );

        let mut ids = Vec::new();
        for (order, status) in [
            ("#1", RunStatus::Succeeded),
            ("#2", RunStatus::Succeeded),
            ("#3", RunStatus::Failed),
            ("#4", RunStatus::Dead),
            ("#5", RunStatus::Queued),
            ("#6", RunStatus::Running),
        ] {
            ids.push(run_in(store, a, order, status).await);
        }
        // Tenant B's runs never show in A's figures.
        run_in(store, b, "#b", RunStatus::Dead).await;

        let activity = store
            .run_activity(a.0, day_start, Utc::now())
            .await
            .unwrap();
        assert_eq!(activity.pairs.len(), 1, "{backend:?}");
        let pair = &activity.pairs[0];
        assert_eq!(pair.pair_id, a.1);
        assert_eq!(
            (
                pair.events_today,
                pair.succeeded_today,
                pair.failed_today,
                pair.backlog
            ),
            (6, 2, 2, 2),
            "{backend:?}"
        );
        assert!(pair.last_success_at.is_some(), "{backend:?}");
        let (error_run, error, _) = pair.last_error.clone().unwrap();
        assert_eq!(
            (error_run, error.as_str()),
            (ids[3], "#4 broke"),
            "{backend:?}"
        );
        let last = activity.hours.last().unwrap();
        assert_eq!(
            (last.succeeded, last.failed, last.other),
            (2, 2, 2),
            "{backend:?}: this hour's runs by outcome"
        );
        assert!(
            activity.hours[..23]
                .iter()
                .all(|h| h.succeeded + h.failed + h.other == 0),
            "{backend:?}"
        );
        // Nothing counts as "today" before the day starts.
        let tomorrow = store
            .run_activity(a.0, Utc::now() + Duration::hours(1), Utc::now())
            .await
            .unwrap();
        assert_eq!(
            (tomorrow.pairs[0].events_today, tomorrow.pairs[0].backlog),
            (0, 2),
            "{backend:?}"
        );

        // Counting and paging back: older pages from the first, then newer again.
        let filter = RunFilter::default();
        assert_eq!(store.count_runs(a.0, &filter).await.unwrap(), 6);
        let dead = RunFilter {
            status: Some(RunStatus::Dead),
            ..RunFilter::default()
        };
        assert_eq!(store.count_runs(a.0, &dead).await.unwrap(), 1);
        let first = store.list_runs(a.0, &filter, None, 2).await.unwrap();
        assert_eq!(first.prev_cursor, None);
        let second = store
            .list_runs(a.0, &filter, first.next_cursor.as_deref(), 2)
            .await
            .unwrap();
        let third = store
            .list_runs(a.0, &filter, second.next_cursor.as_deref(), 2)
            .await
            .unwrap();
        assert_eq!(third.next_cursor, None);
        let back = store
            .list_newer_runs(a.0, &filter, third.prev_cursor.as_deref().unwrap(), 2)
            .await
            .unwrap();
        let id_list =
            |page: &syncline_store::RunPage| -> Vec<_> { page.runs.iter().map(|r| r.id).collect() };
        assert_eq!(id_list(&back), id_list(&second), "{backend:?}");
        assert!(back.prev_cursor.is_some());
        let top = store
            .list_newer_runs(a.0, &filter, back.prev_cursor.as_deref().unwrap(), 2)
            .await
            .unwrap();
        assert_eq!(id_list(&top), id_list(&first), "{backend:?}");
        assert_eq!(top.prev_cursor, None, "{backend:?}: back at the newest");
        assert!(
            store
                .list_newer_runs(b.0, &filter, back.prev_cursor.as_deref().unwrap(), 2)
                .await
                .unwrap()
                .runs
                .iter()
                .all(|r| r.tenant_id == b.0)
        );
    }
}
