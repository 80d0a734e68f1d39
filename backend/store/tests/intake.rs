//! The intake's group commit: events and their runs stored together, once, on both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use syncline_store::testing;
use syncline_store::{
    ConnectionId, InboxStatus, IntakeEvent, IntakeStored, NewInboxEvent, PlannedRun, RunFilter,
    RunStatus, Store, TenantId,
};

fn delivery(
    tenant: TenantId,
    connection: ConnectionId,
    webhook: &str,
    runs: Vec<PlannedRun>,
) -> IntakeEvent {
    IntakeEvent {
        tenant,
        event: NewInboxEvent {
            connection_id: connection,
            webhook_id: webhook.into(),
            topic: "orders/create".into(),
            shop_domain: "s.myshopify.com".into(),
            api_version: "2026-07".into(),
            event_id: None,
            triggered_at: None,
            payload: format!(r##"{{"name":"#{webhook}"}}"##).into_bytes(),
            status: if runs.is_empty() {
                InboxStatus::Held
            } else {
                InboxStatus::Done
            },
            error: None,
        },
        runs,
    }
}

async fn run_count(store: &Store, tenant: TenantId) -> usize {
    store
        .list_runs(tenant, &RunFilter::default(), None, 1000)
        .await
        .unwrap()
        .runs
        .len()
}

#[tokio::test]
async fn concurrent_deliveries_are_stored_once_each_with_their_runs() {
    for db in testing::both().await {
        let store = &db.store;
        let backend = store.backend();
        let (tenant, pair) = testing::tenant_with_pair(store, "intake", "sandbox").await;
        let connection = pair.shopify_connection_id;
        let planned = |webhook: &str| {
            vec![PlannedRun {
                pair_id: pair.id,
                flow: "orders".into(),
                shopify_ref: Some(format!("#{webhook}")),
            }]
        };
        // 200 deliveries of 100 webhooks at once: every webhook twice, so copies meet both in
        // one group and across groups.
        let mut tasks = tokio::task::JoinSet::new();
        for copy in 0..2 {
            for n in 0..100 {
                let store = store.clone();
                let event = delivery(
                    tenant,
                    connection,
                    &format!("w{n}"),
                    planned(&format!("w{n}")),
                );
                tasks.spawn(async move { (copy, n, store.store_event(event).await.unwrap()) });
            }
        }
        let mut stored = std::collections::HashMap::new();
        let mut duplicates = Vec::new();
        while let Some(result) = tasks.join_next().await {
            match result.unwrap() {
                (_, n, IntakeStored::Stored { inbox_id, runs }) => {
                    assert_eq!(runs.len(), 1, "{backend:?}: one run per stored event");
                    assert!(
                        stored.insert(n, (inbox_id, runs[0])).is_none(),
                        "{backend:?}: w{n} stored twice"
                    );
                }
                (_, n, IntakeStored::Duplicate(id)) => duplicates.push((n, id)),
            }
        }
        assert_eq!(stored.len(), 100, "{backend:?}");
        assert_eq!(duplicates.len(), 100, "{backend:?}");
        for (n, id) in duplicates {
            assert_eq!(
                stored[&n].0, id,
                "{backend:?}: a duplicate names the first copy"
            );
        }
        assert_eq!(run_count(store, tenant).await, 100, "{backend:?}");
        let (inbox_id, run_id) = stored[&7];
        let run = store.run(tenant, run_id).await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Queued, "{backend:?}");
        assert_eq!(run.inbox_id, inbox_id, "{backend:?}");
        assert_eq!(run.shopify_ref.as_deref(), Some("#w7"), "{backend:?}");
        let event = store.inbox_event(tenant, inbox_id).await.unwrap().unwrap();
        assert_eq!(event.status, InboxStatus::Done, "{backend:?}");
        assert_eq!(event.payload, br##"{"name":"#w7"}"##, "{backend:?}");
    }
}

#[tokio::test]
async fn a_delivery_that_cannot_be_stored_fails_alone() {
    for db in testing::both().await {
        let store = &db.store;
        let backend = store.backend();
        let (tenant, pair) = testing::tenant_with_pair(store, "alone", "sandbox").await;
        let connection = pair.shopify_connection_id;
        // A connection that does not exist breaks its foreign key; the group it lands in must
        // still store everyone else's.
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..40 {
            let store = store.clone();
            let target = if n == 13 {
                ConnectionId::new()
            } else {
                connection
            };
            let event = delivery(tenant, target, &format!("x{n}"), Vec::new());
            tasks.spawn(async move { (n, store.store_event(event).await) });
        }
        let mut failed = Vec::new();
        while let Some(result) = tasks.join_next().await {
            let (n, result) = result.unwrap();
            match result {
                Ok(IntakeStored::Stored { runs, .. }) => assert!(runs.is_empty(), "{backend:?}"),
                Ok(IntakeStored::Duplicate(_)) => panic!("{backend:?}: x{n} is no duplicate"),
                Err(_) => failed.push(n),
            }
        }
        assert_eq!(failed, vec![13], "{backend:?}");
        let held = store.list_inbox(tenant, 100).await.unwrap();
        assert_eq!(held.len(), 39, "{backend:?}");
        assert!(
            held.iter().all(|e| e.status == InboxStatus::Held),
            "{backend:?}"
        );
        assert_eq!(run_count(store, tenant).await, 0, "{backend:?}");
    }
}
