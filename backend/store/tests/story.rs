//! Storage behaviour as one story, run against SQLite and PostgreSQL alike.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use syncline_store::testing;
use syncline_store::{Backend, NewAuditEntry, NewTenant, StoreError, TenantId, TenantStatus};

#[tokio::test]
async fn tenants_behave_the_same_on_both_backends() {
    for db in testing::both().await {
        let store = &db.store;
        let backend = store.backend();
        store.ping().await.unwrap();

        let acme = store
            .create_tenant(&NewTenant {
                slug: "acme".into(),
                name: "Acme Ltd".into(),
            })
            .await
            .unwrap();
        assert_eq!(acme.status, TenantStatus::Active, "{backend:?}");
        assert_eq!(
            store.tenant(acme.id).await.unwrap().as_ref(),
            Some(&acme),
            "{backend:?}: read back"
        );

        let taken = store
            .create_tenant(&NewTenant {
                slug: "acme".into(),
                name: "Other".into(),
            })
            .await;
        assert!(
            matches!(&taken, Err(e) if e.is_conflict_on("uq_tenants_slug")),
            "{backend:?}: duplicate slug must be a named conflict, got {taken:?}"
        );

        let globex = store
            .create_tenant(&NewTenant {
                slug: "globex".into(),
                name: "Globex — Ünïcode".into(),
            })
            .await
            .unwrap();
        let listed: Vec<_> = store
            .list_tenants()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.slug)
            .collect();
        assert_eq!(listed, ["acme", "globex"], "{backend:?}");

        let suspended = store
            .set_tenant_status(globex.id, TenantStatus::Suspended)
            .await
            .unwrap();
        assert_eq!(suspended.status, TenantStatus::Suspended);
        assert!(suspended.updated_at >= globex.updated_at);
        assert!(matches!(
            store
                .set_tenant_status(TenantId::new(), TenantStatus::Active)
                .await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(store.tenant(TenantId::new()).await.unwrap(), None);
    }
}

#[tokio::test]
async fn audit_log_is_per_tenant_and_newest_first() {
    for db in testing::both().await {
        let store = &db.store;
        let a = store
            .create_tenant(&NewTenant {
                slug: "a".into(),
                name: "A".into(),
            })
            .await
            .unwrap();
        let b = store
            .create_tenant(&NewTenant {
                slug: "b".into(),
                name: "B".into(),
            })
            .await
            .unwrap();
        for action in ["first", "second"] {
            store
                .audit(&NewAuditEntry {
                    tenant_id: Some(a.id),
                    actor: "owner@a.example".into(),
                    action: action.into(),
                    detail: serde_json::json!({ "n": action }),
                })
                .await
                .unwrap();
        }
        store
            .audit(&NewAuditEntry {
                tenant_id: Some(b.id),
                actor: "x".into(),
                action: "b-only".into(),
                detail: serde_json::json!({}),
            })
            .await
            .unwrap();
        let log = store.tenant_audit_log(a.id, 10).await.unwrap();
        let actions: Vec<_> = log.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["second", "first"], "{:?}", store.backend());
        assert_eq!(log[0].detail.0["n"], "second");
        assert!(log.iter().all(|e| e.tenant_id == Some(a.id)));
    }
}

#[tokio::test]
async fn embedded_database_is_a_wal_file() {
    let db = testing::sqlite().await;
    assert_eq!(db.store.backend(), Backend::Sqlite);
    let path = db.url.trim_start_matches("sqlite://");
    assert!(
        std::path::Path::new(path).is_file(),
        "SQLite file exists at {path}"
    );
    // The -wal file exists while connections are open in WAL mode.
    assert!(
        std::path::Path::new(&format!("{path}-wal")).exists(),
        "WAL mode is on"
    );
}
