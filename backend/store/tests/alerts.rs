//! Alert rules, incidents and channels behave the same on SQLite and PostgreSQL: defaults are
//! created once per pair, one incident at most is open per rule and pair, a notification is
//! claimed by one caller only, and only dead (not retrying) runs count as dead letters.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use chrono::{Duration, Utc};
use syncline_store::testing;
use syncline_store::{
    AlertKind, AlertRuleUpdate, ChannelKind, InboxInsert, InboxStatus, NewChannel, NewInboxEvent,
    NewIncident, NewRun, PairStatus, RunOutcome, RunStatus, Store, TenantId,
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

async fn finished_run(
    store: &Store,
    tenant: TenantId,
    pair: syncline_store::PairId,
    connection: syncline_store::ConnectionId,
    webhook: &str,
    status: RunStatus,
    class: &str,
) {
    let inbox = event(store, tenant, connection, webhook).await;
    let (run, _) = store
        .create_run(
            tenant,
            &NewRun {
                pair_id: pair,
                inbox_id: inbox,
                flow: "orders".into(),
                shopify_ref: None,
                input_snapshot: None,
            },
        )
        .await
        .unwrap();
    store
        .claim_run(tenant, run.id, Duration::seconds(60))
        .await
        .unwrap()
        .unwrap();
    let outcome = RunOutcome {
        status,
        next_attempt_at: (status == RunStatus::Retrying).then(|| Utc::now() + Duration::hours(1)),
        error: Some(format!("{class} failure")),
        error_class: Some(class.into()),
        d365_ref: None,
        output_snapshot: None,
        mapping_version: None,
        input_snapshot: None,
    };
    store.finish_run(tenant, run.id, &outcome).await.unwrap();
}

#[tokio::test]
async fn rules_incidents_and_channels_tell_one_story_on_both_backends() {
    for db in testing::both().await {
        let store = &db.store;
        let backend = store.backend();
        let (tenant, pair, connection) = fixture(store, "alerts").await;
        let (other, other_pair, _) = fixture(store, "other").await;

        // Defaults appear once, however often (or concurrently) they are ensured.
        let (a, b) = tokio::join!(
            store.ensure_alert_rules(tenant, pair),
            store.ensure_alert_rules(tenant, pair)
        );
        assert_eq!(a.unwrap().len(), AlertKind::ALL.len(), "{backend:?}");
        let rules = b.unwrap();
        assert_eq!(rules.len(), AlertKind::ALL.len());
        assert!(
            store
                .ensure_alert_rules(other, pair)
                .await
                .unwrap()
                .is_empty(),
            "another tenant's pair gets no rules"
        );
        let dead_rule = rules
            .iter()
            .find(|r| r.kind == AlertKind::RunDead)
            .unwrap()
            .clone();
        assert!(
            store
                .alert_rule(other, dead_rule.id)
                .await
                .unwrap()
                .is_none()
        );

        // Retrying runs never count as dead letters; dead ones do, with their error as cause.
        finished_run(
            store,
            tenant,
            pair,
            connection,
            "r1",
            RunStatus::Retrying,
            "transient",
        )
        .await;
        let now = Utc::now();
        let measured = store.measure_alert(&dead_rule, now).await.unwrap();
        assert_eq!(measured.value, 0.0, "{backend:?}");
        finished_run(
            store,
            tenant,
            pair,
            connection,
            "d1",
            RunStatus::Dead,
            "permanent",
        )
        .await;
        finished_run(
            store,
            tenant,
            pair,
            connection,
            "s1",
            RunStatus::Succeeded,
            "none",
        )
        .await;
        let measured = store.measure_alert(&dead_rule, Utc::now()).await.unwrap();
        assert_eq!(measured.value, 1.0);
        assert_eq!(measured.cause.as_deref(), Some("permanent failure"));
        let rate = rules
            .iter()
            .find(|r| r.kind == AlertKind::FailureRate)
            .unwrap();
        let measured = store.measure_alert(rate, Utc::now()).await.unwrap();
        assert_eq!((measured.value, measured.sample), (50.0, 2), "{backend:?}");
        let backlog = rules
            .iter()
            .find(|r| r.kind == AlertKind::BacklogAge)
            .unwrap();
        let measured = store
            .measure_alert(backlog, Utc::now() + Duration::minutes(10))
            .await
            .unwrap();
        assert!(
            measured.value >= 9.9 && measured.sample == 1,
            "{measured:?}"
        );

        // A pair that usually has traffic and went quiet: only active pairs, only after the window.
        let quiet = rules
            .iter()
            .find(|r| r.kind == AlertKind::NoEvents)
            .unwrap();
        let silent = store
            .measure_alert(quiet, Utc::now() + Duration::hours(7))
            .await
            .unwrap();
        assert_eq!(
            silent.value, 0.0,
            "{backend:?}: a draft pair is never quiet"
        );
        store
            .set_pair_status(tenant, pair, PairStatus::Active, None)
            .await
            .unwrap();
        let silent = store.measure_alert(quiet, Utc::now()).await.unwrap();
        assert_eq!(
            silent.value, 0.0,
            "{backend:?}: events arrived within the window"
        );
        let silent = store
            .measure_alert(quiet, Utc::now() + Duration::hours(7))
            .await
            .unwrap();
        assert_eq!((silent.value, silent.sample), (3.0, 3), "{backend:?}");
        assert!(silent.cause.unwrap().contains("no Shopify events"));

        // One open incident per rule and pair, even when two processes race.
        let new = NewIncident {
            rule_id: dead_rule.id,
            pair_id: pair,
            kind: AlertKind::RunDead,
            summary: "p: run dead-lettered".into(),
            cause: measured.cause.clone(),
            value: 1.0,
            runs_url: "/console/runs?status=dead".into(),
        };
        let (x, y) = tokio::join!(
            store.open_incident(tenant, &new),
            store.open_incident(tenant, &new)
        );
        let opened: Vec<_> = [x.unwrap(), y.unwrap()].into_iter().flatten().collect();
        assert_eq!(opened.len(), 1, "{backend:?}");
        let incident = opened[0].clone();
        assert_eq!(store.count_open_incidents(tenant).await.unwrap(), 1);
        assert_eq!(store.count_open_incidents(other).await.unwrap(), 0);
        assert!(store.incident(other, incident.id).await.unwrap().is_none());

        // The first notification is claimed once; a reminder only after the interval.
        let (x, y) = tokio::join!(
            store.claim_incident_notification(tenant, incident.id, Utc::now()),
            store.claim_incident_notification(tenant, incident.id, Utc::now())
        );
        assert_eq!(
            [x.unwrap(), y.unwrap()].iter().flatten().count(),
            1,
            "{backend:?}"
        );
        let early = Utc::now() - Duration::minutes(5);
        assert!(
            store
                .claim_incident_notification(tenant, incident.id, early)
                .await
                .unwrap()
                .is_none()
        );
        let later = Utc::now() + Duration::seconds(1);
        let reminded = store
            .claim_incident_notification(tenant, incident.id, later)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reminded.notifications, 2);

        // Acknowledged incidents send no reminders; resolving happens once.
        store
            .update_incident_value(tenant, incident.id, 3.0, None)
            .await
            .unwrap();
        let acked = store
            .acknowledge_incident(tenant, incident.id, "owner@example.test")
            .await
            .unwrap();
        assert_eq!(acked.acknowledged_by.as_deref(), Some("owner@example.test"));
        assert_eq!(acked.peak_value, 3.0);
        let future = Utc::now() + Duration::hours(48);
        assert!(
            store
                .claim_incident_notification(tenant, incident.id, future)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .acknowledge_incident(other, incident.id, "x")
                .await
                .is_err()
        );
        let (x, y) = tokio::join!(
            store.resolve_incident(tenant, incident.id),
            store.resolve_incident(tenant, incident.id)
        );
        assert_eq!([x.unwrap(), y.unwrap()].iter().flatten().count(), 1);
        assert_eq!(store.count_open_incidents(tenant).await.unwrap(), 0);
        // A new incident may open after the old one resolved.
        assert!(store.open_incident(tenant, &new).await.unwrap().is_some());
        assert_eq!(
            store.list_incidents(tenant, false, 10).await.unwrap().len(),
            2
        );
        assert_eq!(
            store.list_incidents(tenant, true, 10).await.unwrap().len(),
            1
        );

        // Rules can be tuned; channels are tenant-owned.
        let update = AlertRuleUpdate {
            enabled: false,
            threshold: 3.0,
            window_minutes: 30,
            renotify_minutes: 60,
        };
        let tuned = store
            .update_alert_rule(tenant, dead_rule.id, &update)
            .await
            .unwrap();
        assert!(!tuned.enabled && tuned.threshold == 3.0);
        assert!(
            store
                .update_alert_rule(other, dead_rule.id, &update)
                .await
                .is_err()
        );
        let channel = store
            .create_alert_channel(
                tenant,
                &NewChannel {
                    name: "Ops".into(),
                    kind: ChannelKind::Email,
                    settings: serde_json::json!({"addresses": ["ops@example.test"]}),
                    enabled: true,
                },
            )
            .await
            .unwrap();
        assert_eq!(store.list_alert_channels(tenant).await.unwrap().len(), 1);

        // The outbox: one delivery per enabled channel, claimed by one process at a time.
        let open = store
            .list_incidents(tenant, true, 1)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(
            store
                .queue_alert_deliveries(tenant, open.id, "opened")
                .await
                .unwrap(),
            1
        );
        let lease = Duration::seconds(30);
        let (x, y) = tokio::join!(
            store.claim_alert_deliveries(10, lease),
            store.claim_alert_deliveries(10, lease)
        );
        let claimed: Vec<_> = x.unwrap().into_iter().chain(y.unwrap()).collect();
        assert_eq!(claimed.len(), 1, "{backend:?}");
        assert!(
            store
                .claim_alert_deliveries(10, lease)
                .await
                .unwrap()
                .is_empty(),
            "claimed"
        );
        let retry_at = Utc::now() - Duration::seconds(1);
        store
            .finish_alert_delivery(tenant, claimed[0].id, Err(("503", Some(retry_at))))
            .await
            .unwrap();
        let again = store.claim_alert_deliveries(10, lease).await.unwrap();
        assert_eq!((again.len(), again[0].attempts), (1, 2), "{backend:?}");
        store
            .finish_alert_delivery(tenant, again[0].id, Ok(()))
            .await
            .unwrap();
        assert!(
            store
                .claim_alert_deliveries(10, lease)
                .await
                .unwrap()
                .is_empty()
        );
        let listed = store.alert_deliveries(tenant, open.id).await.unwrap();
        assert_eq!(listed[0].status, "sent");
        assert!(
            store
                .alert_deliveries(other, open.id)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .alert_channel(other, channel.id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(!store.delete_alert_channel(other, channel.id).await.unwrap());
        assert!(
            store
                .delete_alert_channel(tenant, channel.id)
                .await
                .unwrap()
        );
        let _ = other_pair;
    }
}

#[tokio::test]
async fn webhook_checks_digests_and_routes_are_claimed_once_and_stay_in_their_tenant() {
    for db in testing::both().await {
        let store = &db.store;
        let backend = store.backend();
        let (tenant, pair, _) = fixture(store, "claims").await;
        let (other, other_pair, _) = fixture(store, "claims-other").await;
        store
            .set_pair_status(tenant, pair, PairStatus::Active, None)
            .await
            .unwrap();

        // One of two concurrent checkers wins a due pair; nobody while it is held or not due.
        let due = Utc::now();
        let lease = Duration::minutes(5);
        let (a, b) = tokio::join!(
            store.claim_webhook_check(tenant, pair, due, lease),
            store.claim_webhook_check(tenant, pair, due, lease)
        );
        assert!(a.unwrap() ^ b.unwrap(), "{backend:?}: exactly one claim");
        assert!(
            !store
                .claim_webhook_check(other, pair, due, lease)
                .await
                .unwrap()
        );
        store
            .record_webhook_check(tenant, pair, Some(2), Some("ORDERS_CREATE, ORDERS_UPDATED"))
            .await
            .unwrap();
        let rules = store.ensure_alert_rules(tenant, pair).await.unwrap();
        let rule = rules
            .iter()
            .find(|r| r.kind == AlertKind::WebhookMissing)
            .unwrap();
        let measured = store.measure_alert(rule, Utc::now()).await.unwrap();
        assert_eq!(measured.value, 2.0, "{backend:?}");
        // A failed listing keeps the count; a clean check clears it.
        store
            .record_webhook_check(tenant, pair, None, Some("could not be checked"))
            .await
            .unwrap();
        assert_eq!(
            store.measure_alert(rule, Utc::now()).await.unwrap().value,
            2.0
        );
        assert!(
            !store
                .claim_webhook_check(tenant, pair, Utc::now() - Duration::minutes(10), lease)
                .await
                .unwrap(),
            "{backend:?}: checked just now, not due"
        );
        store
            .record_webhook_check(tenant, pair, Some(0), None)
            .await
            .unwrap();
        let due_now = store
            .due_webhook_checks(Utc::now() + Duration::seconds(1), 100)
            .await
            .unwrap();
        assert!(due_now.contains(&(tenant, pair)), "{backend:?}");
        assert!(
            !due_now.iter().any(|(_, p)| *p == other_pair),
            "{backend:?}: a draft pair is never checked"
        );
        let due_later = store
            .due_webhook_checks(Utc::now() - Duration::minutes(10), 100)
            .await
            .unwrap();
        assert!(!due_later.contains(&(tenant, pair)), "{backend:?}");
        assert_eq!(
            store.measure_alert(rule, Utc::now()).await.unwrap().value,
            0.0
        );
        // Another tenant's pair is never recorded through this tenant.
        store
            .record_webhook_check(tenant, other_pair, Some(3), None)
            .await
            .unwrap();
        assert!(
            store
                .webhook_check(other, other_pair)
                .await
                .unwrap()
                .is_none()
        );

        // A day's digest is claimed once; a released claim can be taken again.
        let (a, b) = tokio::join!(
            store.claim_digest(tenant, "2026-11-28"),
            store.claim_digest(tenant, "2026-11-28")
        );
        assert!(
            a.unwrap() ^ b.unwrap(),
            "{backend:?}: exactly one digest claim"
        );
        assert!(store.claim_digest(other, "2026-11-28").await.unwrap());
        store.release_digest(tenant, "2026-11-28").await.unwrap();
        assert!(store.claim_digest(tenant, "2026-11-28").await.unwrap());
        store.finish_digest(tenant, "2026-11-28").await.unwrap();
        store.release_digest(tenant, "2026-11-28").await.unwrap();
        assert!(
            !store.claim_digest(tenant, "2026-11-28").await.unwrap(),
            "{backend:?}: a sent digest stays claimed"
        );

        // A rule routes only to its own tenant's channels.
        let mine = store
            .create_alert_channel(
                tenant,
                &NewChannel {
                    name: "mine".into(),
                    kind: ChannelKind::Email,
                    settings: serde_json::json!({"addresses": ["a@example.test"]}),
                    enabled: true,
                },
            )
            .await
            .unwrap();
        let theirs = store
            .create_alert_channel(
                other,
                &NewChannel {
                    name: "theirs".into(),
                    kind: ChannelKind::Email,
                    settings: serde_json::json!({"addresses": ["b@example.test"]}),
                    enabled: true,
                },
            )
            .await
            .unwrap();
        let kept = store
            .set_rule_channels(tenant, rule.id, &[mine.id, theirs.id])
            .await
            .unwrap();
        assert_eq!(kept, vec![mine.id], "{backend:?}");
        assert!(
            store
                .set_rule_channels(other, rule.id, &[theirs.id])
                .await
                .unwrap()
                .is_empty(),
            "{backend:?}: another tenant cannot route this rule"
        );
        assert_eq!(
            store
                .alert_rule(tenant, rule.id)
                .await
                .unwrap()
                .unwrap()
                .channel_ids,
            vec![mine.id]
        );
    }
}
