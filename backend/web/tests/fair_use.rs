//! Fair use through the alerting machinery, on both backends with the real mailer and SMTP
//! sink: crossing 80 % and then 100 % of the plan's included transactions emails the
//! tenant's owners once per threshold and period (however many passes run), syncing is never
//! held for overage, and the platform admin's overview flags it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::{MODES, env, mail_count, spawn_app, unique_email, wait_for_mail_containing};
use syncline_core::billing::Interval;
use syncline_runner::{AlertEvaluator, AlertOptions, Notifier};
use syncline_store::{BillableEvent, ConnectionKind, NewConnection, NewPair, NewPlan, Role, RunId};
use syncline_web::mail::Mailer;

#[tokio::test]
async fn owners_hear_of_80_and_100_percent_once_and_syncing_never_stops() {
    for mode in MODES {
        let app = spawn_app(mode).await;
        let tenant = app
            .tenant(&format!("busy-{}", uuid::Uuid::new_v4().simple()))
            .await;
        let owner = unique_email("owner");
        let admin_email = unique_email("admin");
        app.user(&owner, Some((tenant, Role::Owner)), false).await;
        app.user(&admin_email, None, true).await;
        let plan = app
            .store
            .create_plan(&NewPlan {
                code: "small".into(),
                name: "Small".into(),
                price_per_pair: rust_decimal::Decimal::new(9900, 2),
                currency: "EUR".into(),
                interval: Interval::Month,
                included_transactions: 10,
                included_api_calls: 1_000_000,
                sandbox_pairs: 1,
                active: true,
            })
            .await
            .unwrap();
        let today = Utc::now().date_naive();
        app.store
            .set_subscription(
                tenant,
                plan.id,
                1,
                today,
                rust_decimal::Decimal::ZERO,
                "test",
            )
            .await
            .unwrap();
        let connection = |kind, name: &str| NewConnection {
            kind,
            name: name.into(),
            sandbox: true,
            settings: serde_json::json!({}),
        };
        let shop = app
            .store
            .create_connection(tenant, &connection(ConnectionKind::Shopify, "s"))
            .await
            .unwrap();
        let erp = app
            .store
            .create_connection(tenant, &connection(ConnectionKind::D365, "d"))
            .await
            .unwrap();
        let pair = app
            .store
            .create_pair(
                tenant,
                &NewPair {
                    name: "Production".into(),
                    shopify_connection_id: shop.id,
                    d365_connection_id: erp.id,
                    environment: "production".into(),
                    flows: vec!["orders".into()],
                },
            )
            .await
            .unwrap();
        let options = AlertOptions {
            public_url: app.base.clone(),
            ..AlertOptions::default()
        };
        let mailer = Mailer::new(
            Some(&env("SYNCLINE_TEST_SMTP_URL")),
            "Syncline <billing@syncline.test>",
        )
        .unwrap();
        let notifier = Notifier::new(app.store.clone(), Arc::new(mailer), options.clone()).unwrap();
        let evaluator = AlertEvaluator::new(app.store.clone(), Arc::new(notifier), options);
        let mut synced = 0;
        let mut sync = |count: usize| {
            let store = app.store.clone();
            let first = synced;
            synced += count;
            async move {
                for n in first..first + count {
                    let record = format!("order-{n}");
                    store
                        .record_billable(
                            tenant,
                            &BillableEvent {
                                pair_id: pair.id,
                                flow: "orders",
                                action: "create",
                                record_id: &record,
                                run_id: RunId::new(),
                                at: Utc::now(),
                            },
                        )
                        .await
                        .unwrap();
                }
            }
        };

        sync(7).await;
        evaluator.tick().await.unwrap();
        assert_eq!(mail_count(&owner), 0, "{mode:?}: 70% is quiet");

        sync(1).await;
        evaluator.tick().await.unwrap();
        let mail = wait_for_mail_containing(
            &owner,
            "Fair use: 80% of the included billable transactions reached.",
        )
        .await;
        assert!(
            mail.contains("used 8 of the 10 billable transactions"),
            "{mail}"
        );
        assert!(mail.contains("Syncing continues"), "{mail}");
        assert!(mail.contains("/console/billing"), "{mail}");
        for _ in 0..3 {
            evaluator.tick().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            mail_count(&owner),
            1,
            "{mode:?}: once per threshold and period"
        );

        sync(7).await; // 15 of 10: both remaining thresholds crossed at once; 100 % sent once.
        evaluator.tick().await.unwrap();
        evaluator.tick().await.unwrap();
        wait_for_mail_containing(
            &owner,
            "Fair use: 100% of the included billable transactions reached.",
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(mail_count(&owner), 2, "{mode:?}");
        let notices = app.store.billing_notices(tenant, today).await.unwrap();
        assert_eq!(notices.len(), 2);
        assert!(notices.iter().all(|n| n.sent_at.is_some()));

        // Never held for overage; flagged for the platform admin.
        assert_eq!(app.store.processing_hold(tenant).await.unwrap(), None);
        let admin = app.session(&admin_email).await;
        let overview: serde_json::Value = admin
            .get(app.url("/api/v1/admin/billing"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let row = overview
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["tenant_id"] == tenant.to_string())
            .unwrap();
        assert_eq!(row["overage"], true, "{row}");
        assert_eq!(row["usage"]["transactions"]["used"], 15);
        let page = admin
            .get(app.url("/console/admin/billing"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("over fair use"), "{page}");
    }
}
