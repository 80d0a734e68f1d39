//! Billing storage tells one story on SQLite and PostgreSQL: plans and subscriptions keep
//! their decimals exactly, a billable transaction is metered once per (pair, flow, action,
//! record) whatever the run, invoice numbers are sequential without gaps under concurrent
//! issuing (and a refused invoice gives its number back), fair-use notices are claimed once,
//! and a suspended subscription holds the intake.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{NaiveDate, Utc};
use rust_decimal::Decimal;
use syncline_core::billing::{Interval, build_invoice, nth_period, segments_from_changes};
use syncline_store::testing;
use syncline_store::{BillableEvent, NewPlan, PairStatus, RunId, SubscriptionStatus};

fn dec(value: &str) -> Decimal {
    Decimal::from_str(value).unwrap()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn connect_plan() -> NewPlan {
    NewPlan {
        code: "connect".into(),
        name: "Connect".into(),
        price_per_pair: dec("599.00"),
        currency: "USD".into(),
        interval: Interval::Year,
        included_transactions: 10_000,
        included_api_calls: 100_000,
        sandbox_pairs: 2,
        active: true,
    }
}

#[tokio::test]
async fn billing_tells_one_story_on_both_backends() {
    for db in testing::both().await {
        let store = &db.store;
        let backend = store.backend().name();
        let (tenant, pair) = testing::tenant_with_pair(store, "acme", "production").await;

        // Plans keep their decimals and a taken code is a named conflict.
        let plan = store.create_plan(&connect_plan()).await.unwrap();
        assert_eq!(plan.price_per_pair, dec("599.00"), "{backend}");
        assert_eq!(plan.interval, Interval::Year);
        let taken = store.create_plan(&connect_plan()).await.unwrap_err();
        assert!(
            taken.is_conflict_on("uq_billing_plans_code"),
            "{backend}: {taken:?}"
        );
        let mut monthly = connect_plan();
        monthly.code = "connect-monthly".into();
        monthly.interval = Interval::Month;
        monthly.price_per_pair = dec("649.995");
        let monthly = store.create_plan(&monthly).await.unwrap();
        assert_eq!(
            store
                .plan_by_code("connect-monthly")
                .await
                .unwrap()
                .unwrap()
                .price_per_pair,
            dec("649.995")
        );
        assert_eq!(store.list_plans().await.unwrap().len(), 2);

        // Subscribing, then changing the pairs mid-period, leaves a change log to prorate.
        let sub = store
            .set_subscription(tenant, monthly.id, 1, day(2026, 4, 1), dec("0.2"), "admin")
            .await
            .unwrap();
        assert_eq!(sub.status, SubscriptionStatus::Active);
        assert_eq!(sub.anchor_on, day(2026, 4, 1));
        let sub = store
            .set_subscription(tenant, monthly.id, 2, day(2026, 4, 16), dec("0.2"), "admin")
            .await
            .unwrap();
        assert_eq!(sub.pairs, 2);
        assert_eq!(sub.anchor_on, day(2026, 4, 1), "a change keeps the anchor");
        assert_eq!(
            store.tenant(tenant).await.unwrap().unwrap().plan,
            "connect-monthly"
        );
        let changes = store.subscription_changes(tenant).await.unwrap();
        assert_eq!(changes.len(), 2);

        // Suspension holds the intake and processing; reactivation lifts it.
        assert_eq!(store.processing_hold(tenant).await.unwrap(), None);
        store
            .set_subscription_status(tenant, SubscriptionStatus::Suspended)
            .await
            .unwrap();
        assert_eq!(
            store.processing_hold(tenant).await.unwrap(),
            Some("subscription suspended")
        );
        store
            .set_pair_status(tenant, pair.id, PairStatus::Active, None)
            .await
            .unwrap();
        assert_eq!(
            store
                .intake_hold_reason(tenant, pair.shopify_connection_id)
                .await
                .unwrap(),
            Some("subscription suspended")
        );
        store
            .set_subscription_status(tenant, SubscriptionStatus::Lapsed)
            .await
            .unwrap();
        assert_eq!(
            store.processing_hold(tenant).await.unwrap(),
            Some("subscription lapsed")
        );
        store
            .set_subscription_status(tenant, SubscriptionStatus::Active)
            .await
            .unwrap();
        assert_eq!(
            store
                .intake_hold_reason(tenant, pair.shopify_connection_id)
                .await
                .unwrap(),
            None
        );

        // Metering: the same record and action counts once, whatever run syncs it again.
        let at = Utc::now();
        let event = |action: &'static str, record: &'static str| BillableEvent {
            pair_id: pair.id,
            flow: "orders",
            action,
            record_id: record,
            run_id: RunId::new(),
            at,
        };
        assert!(
            store
                .record_billable(tenant, &event("create", "1001"))
                .await
                .unwrap()
        );
        assert!(
            !store
                .record_billable(tenant, &event("create", "1001"))
                .await
                .unwrap()
        );
        assert!(
            store
                .record_billable(tenant, &event("cancel", "1001"))
                .await
                .unwrap()
        );
        assert!(
            store
                .record_billable(tenant, &event("create", "1002"))
                .await
                .unwrap()
        );
        store
            .add_api_calls(tenant, pair.id, at.date_naive(), 7)
            .await
            .unwrap();
        store
            .add_api_calls(tenant, pair.id, at.date_naive(), 3)
            .await
            .unwrap();
        let today = at.date_naive();
        let usage = store
            .usage(tenant, today, today.succ_opt().unwrap())
            .await
            .unwrap();
        assert_eq!(usage.len(), 1, "{backend}");
        assert_eq!(
            (usage[0].transactions, usage[0].api_calls),
            (3, 10),
            "{backend}"
        );
        assert_eq!(
            store.billable_events(tenant, pair.id).await.unwrap().len(),
            3
        );

        // Invoices: computed from the change log, stored with exact decimals.
        let period = nth_period(day(2026, 4, 1), Interval::Month, 0).unwrap();
        let segments = segments_from_changes(
            period,
            &changes
                .iter()
                .map(|c| syncline_core::billing::Change {
                    effective_on: c.effective_on,
                    plan: c.plan.terms(),
                    pairs: u32::try_from(c.pairs).unwrap(),
                })
                .collect::<Vec<_>>(),
        );
        let draft = build_invoice(period, Interval::Month, "USD", &segments, dec("0.2")).unwrap();
        let invoice = store
            .create_invoice(
                tenant,
                "syncline",
                &draft,
                day(2026, 5, 1),
                day(2026, 5, 31),
            )
            .await
            .unwrap();
        assert_eq!(invoice.number, 1);
        assert_eq!(invoice.display_number, "SYN-000001");
        assert_eq!(invoice.total, draft.total, "{backend}");
        assert_eq!(invoice.subtotal, draft.subtotal);
        let lines = store.invoice_lines(tenant, invoice.id).await.unwrap();
        assert_eq!(lines.len(), draft.lines.len());
        assert_eq!(
            lines.iter().map(|l| l.amount).sum::<Decimal>(),
            invoice.subtotal
        );
        // The same period again is refused, and does not use up a number.
        let again = store
            .create_invoice(
                tenant,
                "syncline",
                &draft,
                day(2026, 5, 1),
                day(2026, 5, 31),
            )
            .await
            .unwrap_err();
        assert!(
            again.is_conflict_on("uq_invoices_tenant_id_period_start"),
            "{backend}: {again:?}"
        );
        assert!(invoice.is_overdue(day(2026, 6, 1)));
        assert!(!invoice.is_overdue(day(2026, 5, 31)));

        // Another tenant cannot see or pay it.
        let (other, _) = testing::tenant_with_pair(store, "other", "production").await;
        assert!(store.invoice(other, invoice.id).await.unwrap().is_none());
        assert!(
            store
                .invoice_lines(other, invoice.id)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .mark_invoice_paid(other, invoice.id, "x", Utc::now())
                .await
                .is_err()
        );
        let paid = store
            .mark_invoice_paid(tenant, invoice.id, "TRF-1", Utc::now())
            .await
            .unwrap();
        assert_eq!(paid.payment_reference.as_deref(), Some("TRF-1"));
        let twice = store
            .mark_invoice_paid(tenant, invoice.id, "TRF-2", Utc::now())
            .await
            .unwrap_err();
        assert!(twice.is_conflict_on("invoice_not_open"));
        assert!(store.open_invoices().await.unwrap().is_empty());

        // Concurrent issuing: 2..=21, no gaps, no duplicates.
        let mut tasks = Vec::new();
        for month in 0..20u32 {
            let store = store.clone();
            let draft = {
                let mut d = draft.clone();
                d.period = nth_period(day(2027, 1, 1), Interval::Month, month).unwrap();
                d
            };
            tasks.push(tokio::spawn(async move {
                store
                    .create_invoice(tenant, "syncline", &draft, day(2027, 1, 1), day(2027, 2, 1))
                    .await
                    .map(|i| i.number)
            }));
        }
        let mut numbers = BTreeSet::new();
        for task in tasks {
            numbers.insert(
                task.await
                    .unwrap()
                    .unwrap_or_else(|e| panic!("{backend}: {e:?}")),
            );
        }
        assert_eq!(numbers, (2..=21).collect::<BTreeSet<i64>>(), "{backend}");
        assert_eq!(store.list_invoices(tenant).await.unwrap().len(), 21);
        assert_eq!(store.open_invoices().await.unwrap().len(), 20);

        // Fair-use notices are claimed once per threshold and period.
        assert!(
            store
                .claim_billing_notice(tenant, day(2026, 4, 1), "transactions", 80, 8, 10)
                .await
                .unwrap()
        );
        assert!(
            !store
                .claim_billing_notice(tenant, day(2026, 4, 1), "transactions", 80, 9, 10)
                .await
                .unwrap()
        );
        assert!(
            store
                .claim_billing_notice(tenant, day(2026, 5, 1), "transactions", 80, 8, 10)
                .await
                .unwrap()
        );
        store
            .mark_billing_notice_sent(tenant, day(2026, 4, 1), "transactions", 80)
            .await
            .unwrap();
        let notices = store
            .billing_notices(tenant, day(2026, 4, 1))
            .await
            .unwrap();
        assert_eq!(notices.len(), 1);
        assert!(notices[0].sent_at.is_some());
    }
}
