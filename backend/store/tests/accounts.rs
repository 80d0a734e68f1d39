//! Accounts behave the same on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use chrono::{Duration, Utc};
use syncline_store::testing;
use syncline_store::{ActionKind, NewActionToken, NewApiKey, NewTenant, NewUser, Role, StoreError};

fn person(email: &str) -> NewUser {
    NewUser {
        email: email.into(),
        display_name: "Pat".into(),
        password_hash: Some("$argon2id$x".into()),
        is_platform_admin: false,
    }
}

#[tokio::test]
async fn users_memberships_and_sessions() {
    for db in testing::both().await {
        let store = &db.store;
        let backend = store.backend();
        let tenant = store
            .create_tenant(&NewTenant {
                slug: "acme".into(),
                name: "Acme".into(),
            })
            .await
            .unwrap();
        let user = store
            .create_user(&person("Pat@Example.com "))
            .await
            .unwrap();
        assert_eq!(
            user.email, "pat@example.com",
            "{backend:?}: emails are normalised"
        );
        let duplicate = store.create_user(&person("PAT@example.com")).await;
        assert!(
            matches!(&duplicate, Err(e) if e.is_conflict_on("uq_users_email")),
            "{backend:?}: {duplicate:?}"
        );
        let (found, hash) = store
            .user_by_email("pat@EXAMPLE.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, user.id);
        assert_eq!(hash.as_deref(), Some("$argon2id$x"));

        store
            .upsert_member(tenant.id, user.id, Role::Viewer)
            .await
            .unwrap();
        store
            .upsert_member(tenant.id, user.id, Role::Owner)
            .await
            .unwrap();
        assert_eq!(
            store.membership(tenant.id, user.id).await.unwrap(),
            Some(Role::Owner)
        );
        assert_eq!(store.count_owners(tenant.id).await.unwrap(), 1);
        let memberships = store.memberships_of(user.id).await.unwrap();
        assert_eq!(memberships.len(), 1);
        assert_eq!(memberships[0].0.slug, "acme");
        let other = store
            .create_tenant(&NewTenant {
                slug: "other".into(),
                name: "Other".into(),
            })
            .await
            .unwrap();
        assert!(matches!(
            store.set_member_role(other.id, user.id, Role::Admin).await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(
            store
                .tenant_summaries()
                .await
                .unwrap()
                .iter()
                .map(|s| s.users)
                .collect::<Vec<_>>(),
            [1, 0]
        );

        let session = store
            .create_session(user.id, Some(tenant.id), Utc::now() + Duration::hours(1))
            .await
            .unwrap();
        let second = store
            .create_session(user.id, None, Utc::now() + Duration::hours(1))
            .await
            .unwrap();
        store.revoke_session(session.id).await.unwrap();
        assert!(
            store
                .session(session.id)
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some()
        );
        assert!(
            store
                .session(second.id)
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_none()
        );
        store.set_password(user.id, "$argon2id$new").await.unwrap();
        assert!(
            store
                .session(second.id)
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some(),
            "{backend:?}: password change ends sessions"
        );
    }
}

#[tokio::test]
async fn action_tokens_work_once_and_expire() {
    for db in testing::both().await {
        let store = &db.store;
        let tenant = store
            .create_tenant(&NewTenant {
                slug: "t".into(),
                name: "T".into(),
            })
            .await
            .unwrap();
        let new = |hash: &str, expires| NewActionToken {
            kind: ActionKind::Invite,
            token_hash: hash.into(),
            email: "new@example.com".into(),
            tenant_id: Some(tenant.id),
            role: Some(Role::Operator),
            created_by: "admin@example.com".into(),
            expires_at: expires,
        };
        store
            .create_action_token(&new("live", Utc::now() + Duration::hours(72)))
            .await
            .unwrap();
        store
            .create_action_token(&new("expired", Utc::now() - Duration::seconds(1)))
            .await
            .unwrap();
        assert_eq!(store.pending_invitations(tenant.id).await.unwrap().len(), 1);
        assert!(
            store
                .peek_action_token(ActionKind::Invite, "live")
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .peek_action_token(ActionKind::Reset, "live")
                .await
                .unwrap()
                .is_none(),
            "kinds do not mix"
        );
        let taken = store
            .take_action_token(ActionKind::Invite, "live")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(taken.role, Some(Role::Operator));
        assert!(
            store
                .take_action_token(ActionKind::Invite, "live")
                .await
                .unwrap()
                .is_none(),
            "single use"
        );
        assert!(
            store
                .take_action_token(ActionKind::Invite, "expired")
                .await
                .unwrap()
                .is_none(),
            "expired"
        );
    }
}

#[tokio::test]
async fn api_keys_are_tenant_scoped() {
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
        let key = store
            .create_api_key(
                a.id,
                &NewApiKey {
                    name: "ci".into(),
                    role: Role::Viewer,
                    prefix: "sk_abc".into(),
                    key_hash: "h1".into(),
                    created_by: "x".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(
            store.api_key_by_hash("h1").await.unwrap().unwrap().0.id,
            key.id
        );
        assert!(
            store.api_key(b.id, key.id).await.unwrap().is_none(),
            "invisible to another tenant"
        );
        assert!(matches!(
            store.revoke_api_key(b.id, key.id).await,
            Err(StoreError::NotFound)
        ));
        store.touch_api_key(key.id, Utc::now()).await.unwrap();
        assert!(
            store
                .api_key(a.id, key.id)
                .await
                .unwrap()
                .unwrap()
                .last_used_at
                .is_some()
        );
        store.revoke_api_key(a.id, key.id).await.unwrap();
        assert!(
            store.api_key_by_hash("h1").await.unwrap().is_none(),
            "revoked keys do not authenticate"
        );
        assert!(store.list_api_keys(b.id).await.unwrap().is_empty());
    }
}
