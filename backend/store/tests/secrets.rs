//! Encrypted secrets as one story, run against SQLite and PostgreSQL alike: write, reveal with
//! an audit row, tenant isolation, tampering, master key rotation, and the plaintext never
//! reaching the database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use secrecy::{ExposeSecret, SecretString};
use sqlx::{PgPool, SqlitePool};
use syncline_store::crypto::{CryptoError, Keyring, MasterKey};
use syncline_store::testing::{self, TestDatabase};
use syncline_store::{Backend, NewTenant, Store, StoreError, TenantId};

fn master(version: u32, byte: u8) -> MasterKey {
    MasterKey::from_bytes(version, [byte; 32]).unwrap()
}

fn secret(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

async fn tenant(store: &Store, slug: &str) -> TenantId {
    store
        .create_tenant(&NewTenant {
            slug: slug.into(),
            name: slug.to_uppercase(),
        })
        .await
        .unwrap()
        .id
}

/// Direct access to the tables, bypassing the store, to play the attacker with database access.
enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

macro_rules! raw {
    ($raw:expr, $pool:ident => $body:expr) => {
        match &$raw {
            Raw::Sqlite($pool) => $body,
            Raw::Postgres($pool) => $body,
        }
    };
}

impl Raw {
    async fn open(db: &TestDatabase) -> Raw {
        match db.store.backend() {
            Backend::Sqlite => Raw::Sqlite(SqlitePool::connect(&db.url).await.unwrap()),
            Backend::Postgres => Raw::Postgres(PgPool::connect(&db.url).await.unwrap()),
        }
    }

    async fn ciphertext(&self, name: &str) -> Vec<u8> {
        let sql = "SELECT ciphertext FROM secrets WHERE name = $1";
        let (bytes,): (Vec<u8>,) =
            raw!(self, pool => sqlx::query_as(sql).bind(name).fetch_one(pool).await.unwrap());
        bytes
    }

    async fn set_ciphertext(&self, name: &str, bytes: &[u8]) {
        let sql = "UPDATE secrets SET ciphertext = $2 WHERE name = $1";
        let changed = raw!(self, pool => {
            sqlx::query(sql).bind(name).bind(bytes).execute(pool).await.unwrap().rows_affected()
        });
        assert_eq!(changed, 1);
    }

    async fn tenant_key(&self, tenant: TenantId) -> (i64, Vec<u8>) {
        let sql = "SELECT master_version, wrapped_key FROM tenant_keys WHERE tenant_id = $1";
        raw!(self, pool => sqlx::query_as(sql).bind(tenant).fetch_one(pool).await.unwrap())
    }

    async fn set_tenant_key(&self, tenant: TenantId, version: i64, wrapped: &[u8]) {
        let sql =
            "UPDATE tenant_keys SET master_version = $2, wrapped_key = $3 WHERE tenant_id = $1";
        let changed = raw!(self, pool => {
            sqlx::query(sql)
                .bind(tenant)
                .bind(version)
                .bind(wrapped)
                .execute(pool)
                .await
                .unwrap()
                .rows_affected()
        });
        assert_eq!(changed, 1);
    }

    async fn all_ciphertexts(&self) -> Vec<Vec<u8>> {
        let sql = "SELECT ciphertext FROM secrets ORDER BY name";
        let rows: Vec<(Vec<u8>,)> =
            raw!(self, pool => sqlx::query_as(sql).fetch_all(pool).await.unwrap());
        rows.into_iter().map(|(b,)| b).collect()
    }

    async fn close(&self) {
        raw!(self, pool => pool.close().await);
    }
}

#[tokio::test]
async fn secrets_are_write_only_audited_and_tenant_scoped() {
    for db in testing::both().await {
        let backend = db.store.backend();
        let bare = &testing::without_keys(&db.store);
        let store = &db.store.clone().with_keyring(Keyring::new(master(1, 1)));
        assert!(store.has_keyring() && !bare.has_keyring());
        let acme = tenant(store, "acme").await;
        let globex = tenant(store, "globex").await;
        let name = "connection:0190a1b2-0000-7000-8000-000000000001:client_secret";

        let no_keys = bare.put_secret(acme, name, &secret("x")).await.unwrap_err();
        assert!(matches!(no_keys, StoreError::NoKeyring), "{backend:?}");
        assert!(no_keys.to_string().contains("SYNCLINE_MASTER_KEY"));

        assert_eq!(store.secret_meta(acme, name).await.unwrap(), None);
        let first = store
            .put_secret(acme, name, &secret("first-value"))
            .await
            .unwrap();
        assert_eq!(first.name, name);
        assert_eq!(
            store.secret_meta(acme, name).await.unwrap().as_ref(),
            Some(&first)
        );
        let replaced = store
            .put_secret(acme, name, &secret("acme-value"))
            .await
            .unwrap();
        assert_eq!(replaced.id, first.id, "{backend:?}: replacing keeps the id");
        assert!(replaced.updated_at >= first.updated_at);
        assert_eq!(replaced.created_at, first.created_at);
        store
            .put_secret(globex, name, &secret("globex-value"))
            .await
            .unwrap();

        let revealed = store
            .reveal_secret(acme, name, "alice@acme.test", "connection.test")
            .await
            .unwrap();
        assert_eq!(revealed.expose_secret(), "acme-value", "{backend:?}");
        let revealed = store
            .reveal_secret(globex, name, "worker", "flow.orders")
            .await
            .unwrap();
        assert_eq!(revealed.expose_secret(), "globex-value", "{backend:?}");

        // Each decrypt leaves an audit row with who and why, and never the value.
        let log = store.tenant_audit_log(acme, 10).await.unwrap();
        let decrypts: Vec<_> = log
            .iter()
            .filter(|e| e.action == "secret.decrypt")
            .collect();
        assert_eq!(decrypts.len(), 1, "{backend:?}: {log:?}");
        assert_eq!(decrypts[0].actor, "alice@acme.test");
        assert_eq!(decrypts[0].detail.0["purpose"], "connection.test");
        assert_eq!(decrypts[0].detail.0["secret"], name);
        assert_eq!(decrypts[0].detail.0["outcome"], "ok");
        assert!(!format!("{log:?}").contains("acme-value"));

        // Another tenant's secret does not exist for this tenant.
        let only_acme = "connection:only-acme:token";
        store
            .put_secret(acme, only_acme, &secret("acme-only"))
            .await
            .unwrap();
        for result in [
            store
                .reveal_secret(globex, only_acme, "mallory", "probe")
                .await
                .map(|_| ()),
            store
                .put_secret(TenantId::new(), name, &secret("ghost"))
                .await
                .map(|_| ()),
        ] {
            assert!(
                matches!(result, Err(StoreError::NotFound)),
                "{backend:?}: {result:?}"
            );
        }
        assert_eq!(store.secret_meta(globex, only_acme).await.unwrap(), None);
        assert!(!store.delete_secret(globex, only_acme).await.unwrap());

        let listed: Vec<_> = store
            .list_secrets(acme, "connection:")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(listed, [name, only_acme], "{backend:?}");
        assert!(
            store
                .list_secrets(acme, "connection:%")
                .await
                .unwrap()
                .is_empty()
        );

        assert!(store.delete_secret(acme, only_acme).await.unwrap());
        assert!(!store.delete_secret(acme, only_acme).await.unwrap());
        assert!(matches!(
            store.reveal_secret(acme, only_acme, "a", "b").await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(
            store
                .delete_secrets_with_prefix(acme, "connection:")
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .secret_meta(globex, name)
                .await
                .unwrap()
                .map(|m| m.name)
                .as_deref(),
            Some(name)
        );
    }
}

#[tokio::test]
async fn tampered_or_swapped_ciphertexts_and_wrong_keys_fail_clearly() {
    for db in testing::both().await {
        let backend = db.store.backend();
        let store = &db.store.clone().with_keyring(Keyring::new(master(1, 1)));
        let raw = Raw::open(&db).await;
        let acme = tenant(store, "acme").await;
        let globex = tenant(store, "globex").await;
        for (t, n, v) in [
            (acme, "a:token", "acme-token"),
            (acme, "a:secret", "acme-secret"),
            (globex, "g:token", "globex-token"),
        ] {
            store.put_secret(t, n, &secret(v)).await.unwrap();
        }
        let acme_token = raw.ciphertext("a:token").await;
        let acme_secret = raw.ciphertext("a:secret").await;
        let globex_token = raw.ciphertext("g:token").await;

        // Another tenant's ciphertext under this tenant's name.
        raw.set_ciphertext("a:token", &globex_token).await;
        let error = store
            .reveal_secret(acme, "a:token", "mallory", "swap")
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::Crypto(CryptoError::OtherTenant)),
            "{backend:?}: {error}"
        );
        // Another secret's ciphertext of the same tenant.
        raw.set_ciphertext("a:token", &acme_secret).await;
        let error = store
            .reveal_secret(acme, "a:token", "mallory", "swap")
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::Crypto(CryptoError::OtherSecret)),
            "{backend:?}: {error}"
        );
        // One flipped bit in the sealed part.
        let mut flipped = acme_token.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x01;
        raw.set_ciphertext("a:token", &flipped).await;
        let error = store
            .reveal_secret(acme, "a:token", "mallory", "flip")
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::Crypto(CryptoError::Tampered { .. })),
            "{backend:?}: {error}"
        );
        assert!(error.to_string().contains("failed authentication"));
        // Failed decrypts are audited too, with the reason.
        let log = store.tenant_audit_log(acme, 10).await.unwrap();
        let failed = log
            .iter()
            .filter(|e| e.action == "secret.decrypt" && e.detail.0["outcome"] == "failed")
            .count();
        assert_eq!(failed, 3, "{backend:?}");

        raw.set_ciphertext("a:token", &acme_token).await;
        assert_eq!(
            store
                .reveal_secret(acme, "a:token", "ops", "restore")
                .await
                .unwrap()
                .expose_secret(),
            "acme-token"
        );

        // Swapping whole data keys between tenants fails too.
        let (acme_version, acme_wrapped) = raw.tenant_key(acme).await;
        let (_, globex_wrapped) = raw.tenant_key(globex).await;
        raw.set_tenant_key(acme, acme_version, &globex_wrapped)
            .await;
        let error = store
            .reveal_secret(acme, "a:token", "mallory", "swap-key")
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::Crypto(CryptoError::OtherTenant)),
            "{backend:?}: {error}"
        );
        raw.set_tenant_key(acme, acme_version, &acme_wrapped).await;

        // A wrong master key for the right version, and a keyring missing the version.
        let wrong = db.store.clone().with_keyring(Keyring::new(master(1, 2)));
        let error = wrong
            .reveal_secret(acme, "a:token", "ops", "wrong-key")
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::Crypto(CryptoError::WrongMasterKey { version: 1 })
            ),
            "{backend:?}: {error}"
        );
        assert!(error.to_string().contains("wrong master key"));
        let unknown = db.store.clone().with_keyring(Keyring::new(master(5, 5)));
        let error = unknown
            .reveal_secret(acme, "a:token", "ops", "unknown")
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::Crypto(CryptoError::UnknownKeyVersion { version: 1, .. })
            ),
            "{backend:?}: {error}"
        );
        // None of these messages carries a value.
        assert!(!format!("{log:?} {error:?}").contains("acme-token"));
        raw.close().await;
    }
}

#[tokio::test]
async fn master_key_rotation_rewraps_data_keys_and_keeps_every_secret_readable() {
    for db in testing::both().await {
        let backend = db.store.backend();
        let v1 = || master(1, 0x11);
        let v2 = || master(2, 0x22);
        let store = db.store.clone().with_keyring(Keyring::new(v1()));
        let raw = Raw::open(&db).await;
        let mut tenants = Vec::new();
        for slug in ["t1", "t2", "t3"] {
            let id = tenant(&store, slug).await;
            store
                .put_secret(id, "api:token", &secret(&format!("{slug}-token")))
                .await
                .unwrap();
            store
                .put_secret(id, "api:secret", &secret(&format!("{slug}-secret")))
                .await
                .unwrap();
            tenants.push((slug, id));
        }
        let ciphertexts_before = raw.all_ciphertexts().await;
        let (_, t1_wrapped_v1) = raw.tenant_key(tenants[0].1).await;

        let reader = store.clone(); // shares the keyring cell with `store`
        let report = store.rotate_master_key(v2()).await.unwrap();
        assert_eq!(report.new_version, 2);
        assert_eq!(
            (report.rewrapped, report.already_current),
            (3, 0),
            "{backend:?}"
        );
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert_eq!(
            raw.all_ciphertexts().await,
            ciphertexts_before,
            "{backend:?}: rotation must not touch secret ciphertexts"
        );
        for (_, id) in &tenants {
            assert_eq!(raw.tenant_key(*id).await.0, 2);
        }

        let only_new = db.store.clone().with_keyring(Keyring::new(v2()));
        let only_old = db.store.clone().with_keyring(Keyring::new(v1()));
        let both = db
            .store
            .clone()
            .with_keyring(Keyring::new(v2()).with_previous(v1()).unwrap());
        for (slug, id) in &tenants {
            for reading in [&reader, &only_new, &both] {
                let value = reading
                    .reveal_secret(*id, "api:token", "test", "after-rotation")
                    .await
                    .unwrap();
                assert_eq!(
                    value.expose_secret(),
                    format!("{slug}-token"),
                    "{backend:?}"
                );
            }
            let error = only_old
                .reveal_secret(*id, "api:secret", "test", "old-key")
                .await
                .unwrap_err();
            assert!(
                matches!(
                    error,
                    StoreError::Crypto(CryptoError::UnknownKeyVersion { version: 2, .. })
                ),
                "{backend:?}: {error}"
            );
        }
        // New tenants after rotation get data keys under the new version.
        let t4 = tenant(&store, "t4").await;
        store
            .put_secret(t4, "api:token", &secret("t4-token"))
            .await
            .unwrap();
        assert_eq!(raw.tenant_key(t4).await.0, 2);

        // An interrupted pass (t1 still under v1) finishes on a re-run with the same keys.
        raw.set_tenant_key(tenants[0].1, 1, &t1_wrapped_v1).await;
        assert_eq!(
            both.reveal_secret(tenants[0].1, "api:token", "test", "mid-rotation")
                .await
                .unwrap()
                .expose_secret(),
            "t1-token"
        );
        let rerun = db.store.clone().with_keyring(Keyring::new(v1()));
        let report = rerun.rotate_master_key(v2()).await.unwrap();
        assert_eq!(
            (
                report.rewrapped,
                report.already_current,
                report.failed.len()
            ),
            (1, 3, 0),
            "{backend:?}"
        );
        let report = rerun.rotate_master_key(v2()).await.unwrap();
        assert_eq!((report.rewrapped, report.already_current), (0, 4));

        // A key that cannot be unwrapped is reported, not silently skipped; the others proceed.
        raw.set_tenant_key(tenants[1].1, 1, &t1_wrapped_v1).await;
        let report = rerun.rotate_master_key(master(3, 0x33)).await.unwrap();
        assert_eq!(report.failed.len(), 1, "{backend:?}");
        assert_eq!(report.failed[0].tenant, tenants[1].1);
        assert!(matches!(report.failed[0].error, CryptoError::OtherTenant));
        assert_eq!(report.rewrapped, 3);

        // Two different keys claiming one version are refused before anything changes.
        let conflict = only_new
            .rotate_master_key(master(2, 0x99))
            .await
            .unwrap_err();
        assert!(
            matches!(
                conflict,
                StoreError::Crypto(CryptoError::VersionConflict { version: 2 })
            ),
            "{backend:?}: {conflict}"
        );
        raw.close().await;
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn plaintext_never_reaches_the_database() {
    for db in testing::both().await {
        let backend = db.store.backend();
        let store = db.store.clone().with_keyring(Keyring::new(master(1, 7)));
        let canary = format!("PLAINTEXT-CANARY-{}", uuid_like());
        let name = "connection:canary:client_secret";
        let acme = tenant(&store, "acme").await;
        store
            .put_secret(acme, name, &secret(&canary))
            .await
            .unwrap();
        store
            .put_secret(acme, "connection:canary:second", &secret(&canary))
            .await
            .unwrap();
        let revealed = store
            .reveal_secret(acme, name, "test", "canary")
            .await
            .unwrap();
        assert_eq!(revealed.expose_secret(), canary);
        let hex_canary = hex(canary.as_bytes());

        match backend {
            Backend::Sqlite => {
                store.close().await;
                let path = db.url.strip_prefix("sqlite://").unwrap();
                let mut bytes = std::fs::read(path).unwrap();
                for extra in ["-wal", "-journal"] {
                    if let Ok(more) = std::fs::read(format!("{path}{extra}")) {
                        bytes.extend(more);
                    }
                }
                // Sanity: we are reading the file that holds the rows.
                assert!(contains(&bytes, name.as_bytes()), "secret name not in file");
                assert!(contains(&bytes, b"secret.decrypt"), "audit row not in file");
                assert!(
                    !contains(&bytes, canary.as_bytes()),
                    "plaintext found in the SQLite file"
                );
                assert!(!contains(&bytes, hex_canary.as_bytes()));
            }
            Backend::Postgres => {
                let pool = PgPool::connect(&db.url).await.unwrap();
                let mut dump = String::new();
                for sql in [
                    "SELECT concat_ws('|', id::text, tenant_id::text, name::text, ciphertext::text, \
                     encode(ciphertext, 'escape'), created_at::text, updated_at::text) FROM secrets",
                    "SELECT concat_ws('|', tenant_id::text, master_version::text, wrapped_key::text, \
                     encode(wrapped_key, 'escape'), created_at::text, rotated_at::text) FROM tenant_keys",
                    "SELECT concat_ws('|', id::text, tenant_id::text, actor, action, detail::text, \
                     created_at::text) FROM audit_log",
                ] {
                    let rows: Vec<(String,)> = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
                    for (row,) in rows {
                        dump.push_str(&row);
                        dump.push('\n');
                    }
                }
                pool.close().await;
                assert!(dump.contains(name), "secret name not in dump");
                assert!(dump.contains("secret.decrypt"), "audit row not in dump");
                assert!(!dump.contains(&canary), "plaintext found in the table dump");
                assert!(!dump.to_lowercase().contains(&hex_canary));
            }
        }
    }
}

fn uuid_like() -> String {
    // Unique per run so a stale file can never make the search pass or fail by accident.
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
