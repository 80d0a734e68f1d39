//! Connections and pairs behave the same on SQLite and PostgreSQL, tenant-scoped.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use syncline_store::testing;
use syncline_store::{
    ConnectionKind, NewConnection, NewPair, NewTenant, PairStatus, PairWebhook, StoreError,
};

#[tokio::test]
async fn connections_and_pairs_are_tenant_scoped() {
    for db in testing::both().await {
        let store = &db.store;
        let backend = store.backend();
        let a = store
            .create_tenant(&NewTenant {
                slug: "a".into(),
                name: "A".into(),
            })
            .await
            .unwrap()
            .id;
        let b = store
            .create_tenant(&NewTenant {
                slug: "b".into(),
                name: "B".into(),
            })
            .await
            .unwrap()
            .id;
        let shop = store
            .create_connection(a, &NewConnection {
                kind: ConnectionKind::Shopify,
                name: "Store".into(),
                sandbox: false,
                settings: serde_json::json!({"shop_domain": "acme.myshopify.com", "api_version": "2025-07"}),
            })
            .await
            .unwrap();
        let erp = store
            .create_connection(
                a,
                &NewConnection {
                    kind: ConnectionKind::D365,
                    name: "ERP".into(),
                    sandbox: false,
                    settings: serde_json::json!({}),
                },
            )
            .await
            .unwrap();
        let dup = store
            .create_connection(
                a,
                &NewConnection {
                    kind: ConnectionKind::D365,
                    name: "ERP".into(),
                    sandbox: false,
                    settings: serde_json::json!({}),
                },
            )
            .await;
        assert!(
            matches!(&dup, Err(e) if e.is_conflict_on("uq_connections_tenant_id_name")),
            "{backend:?}: {dup:?}"
        );
        assert!(
            store.connection(b, shop.id).await.unwrap().is_none(),
            "{backend:?}: invisible to B"
        );
        assert!(store.list_connections(b).await.unwrap().is_empty());
        assert_eq!(
            store
                .connection(a, shop.id)
                .await
                .unwrap()
                .unwrap()
                .settings["shop_domain"],
            "acme.myshopify.com"
        );

        let new_pair = NewPair {
            name: "Main".into(),
            shopify_connection_id: shop.id,
            d365_connection_id: erp.id,
            environment: "production".into(),
            flows: vec!["orders".into()],
        };
        assert!(
            matches!(
                store.create_pair(b, &new_pair).await,
                Err(StoreError::NotFound)
            ),
            "B cannot use A's connections"
        );
        let swapped = NewPair {
            shopify_connection_id: erp.id,
            d365_connection_id: shop.id,
            ..new_pair.clone()
        };
        assert!(
            matches!(
                store.create_pair(a, &swapped).await,
                Err(StoreError::Conflict { .. })
            ),
            "kinds are checked"
        );
        let pair = store.create_pair(a, &new_pair).await.unwrap();
        assert_eq!(pair.status, PairStatus::Draft);
        let summaries = store.tenant_summaries().await.unwrap();
        let pairs_of = |t| summaries.iter().find(|s| s.tenant.id == t).unwrap().pairs;
        assert_eq!(
            (pairs_of(a), pairs_of(b)),
            (1, 0),
            "{backend:?}: the admin list counts pairs"
        );
        assert_eq!(pair.flows, ["orders"]);
        assert!(
            matches!(
                store.delete_connection(a, shop.id).await,
                Err(StoreError::Conflict { .. })
            ),
            "in use by a pair"
        );

        let paused = store
            .set_pair_status(
                a,
                pair.id,
                PairStatus::Paused,
                Some("Shopify token revoked"),
            )
            .await
            .unwrap();
        assert_eq!(
            paused.pause_reason.as_deref(),
            Some("Shopify token revoked")
        );
        let active = store
            .set_pair_status(a, pair.id, PairStatus::Active, Some("ignored"))
            .await
            .unwrap();
        assert_eq!(active.pause_reason, None);
        assert_eq!(store.count_live_pairs(a, "production").await.unwrap(), 1);
        assert!(matches!(
            store
                .set_pair_status(b, pair.id, PairStatus::Draft, None)
                .await,
            Err(StoreError::NotFound)
        ));

        let hook = PairWebhook {
            topic: "ORDERS_CREATE".into(),
            subscription_id: "gid://shopify/WebhookSubscription/1".into(),
            callback_url: "https://x/hooks".into(),
            created_at: chrono::Utc::now(),
        };
        store.save_pair_webhook(a, pair.id, &hook).await.unwrap();
        store
            .save_pair_webhook(
                a,
                pair.id,
                &PairWebhook {
                    subscription_id: "gid://shopify/WebhookSubscription/2".into(),
                    ..hook.clone()
                },
            )
            .await
            .unwrap();
        let hooks = store.pair_webhooks(a, pair.id).await.unwrap();
        assert_eq!(hooks.len(), 1, "one per topic");
        assert!(hooks[0].subscription_id.ends_with("/2"));
        assert!(store.pair_webhooks(b, pair.id).await.unwrap().is_empty());

        store
            .create_oauth_state(
                a,
                "h1",
                "acme.myshopify.com",
                "owner@a",
                chrono::Utc::now() + chrono::Duration::minutes(10),
            )
            .await
            .unwrap();
        assert_eq!(
            store.take_oauth_state("h1").await.unwrap().map(|s| s.0),
            Some(a)
        );
        assert!(
            store.take_oauth_state("h1").await.unwrap().is_none(),
            "single use"
        );
    }
}
