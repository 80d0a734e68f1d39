//! Fresh, migrated databases for tests on both backends.
//!
//! PostgreSQL tests need `SYNCLINE_TEST_DATABASE_URL` (a URL of a server where the user may
//! `CREATE DATABASE`); `tests/run.sh` starts a private server and sets it. A missing variable
//! is a loud failure, never a skipped test.

use uuid::Uuid;

use crate::crypto::{Keyring, MasterKey};
use crate::{SqliteSettings, Store, StoreOptions};

/// A key ring with a fresh random master key, so tests can store secrets.
pub fn keyring() -> Keyring {
    Keyring::new(MasterKey::generate(1).unwrap_or_else(|e| panic!("test master key: {e}")))
}

/// Environment variable naming the PostgreSQL server used by tests.
pub const POSTGRES_ENV: &str = "SYNCLINE_TEST_DATABASE_URL";

/// A store plus whatever keeps it alive (the SQLite temp directory) and its URL.
pub struct TestDatabase {
    /// The migrated store.
    pub store: Store,
    /// A URL another process can open: `sqlite://…` or `postgres://…`.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// The PostgreSQL server URL for tests, or a panic that says how to get one.
pub fn postgres_server_url() -> String {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{POSTGRES_ENV} is not set: PostgreSQL tests need a server. \
             Run the whole suite with tests/run.sh, which starts one."
        ),
    }
}

/// A new SQLite file in a temporary directory, migrated.
pub async fn sqlite() -> TestDatabase {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let path = dir.path().join("syncline.db");
    let store = Store::connect(&StoreOptions::Sqlite(SqliteSettings { path: path.clone() }))
        .await
        .unwrap_or_else(|e| panic!("open SQLite: {e}"));
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrate SQLite: {e}"));
    let store = store.with_keyring(keyring());
    TestDatabase {
        store,
        url: format!("sqlite://{}", path.display()),
        _dir: Some(dir),
    }
}

/// A new, empty PostgreSQL database on the test server, migrated.
pub async fn postgres() -> TestDatabase {
    let server = postgres_server_url();
    let admin = Store::connect(&StoreOptions::Postgres {
        url: server.clone(),
        max_connections: 1,
    })
    .await
    .unwrap_or_else(|e| panic!("connect to the test PostgreSQL server: {e}"));
    let name = format!("syncline_test_{}", Uuid::new_v4().simple());
    admin
        .execute_raw(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("create database: {e}"));
    admin.close().await;
    let url = with_database(&server, &name);
    let store = Store::connect(&StoreOptions::Postgres {
        url: url.clone(),
        max_connections: 5,
    })
    .await
    .unwrap_or_else(|e| panic!("connect to {name}: {e}"));
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrate PostgreSQL: {e}"));
    let store = store.with_keyring(keyring());
    TestDatabase {
        store,
        url,
        _dir: None,
    }
}

/// Both backends, for suites that must behave the same on each.
pub async fn both() -> Vec<TestDatabase> {
    vec![sqlite().await, postgres().await]
}

fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server, None),
    };
    // The path is whatever follows the authority; replace it with our database.
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut url = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// The same database without any master key, to test what secret calls do then.
pub fn without_keys(store: &Store) -> Store {
    let mut bare = store.clone();
    bare.keyring = None;
    bare
}

/// A new tenant with a Shopify and a D365 connection joined by one pair (flow `orders`) in
/// `environment` (`sandbox` or `production`).
pub async fn tenant_with_pair(
    store: &Store,
    slug: &str,
    environment: &str,
) -> (crate::TenantId, crate::Pair) {
    let tenant = store
        .create_tenant(&crate::NewTenant {
            slug: slug.into(),
            name: slug.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("create tenant {slug}: {e}"))
        .id;
    let connection = |kind, name: &str| crate::NewConnection {
        kind,
        name: name.into(),
        sandbox: true,
        settings: serde_json::json!({}),
    };
    let shop = store
        .create_connection(tenant, &connection(crate::ConnectionKind::Shopify, "s"))
        .await
        .unwrap_or_else(|e| panic!("create Shopify connection: {e}"));
    let erp = store
        .create_connection(tenant, &connection(crate::ConnectionKind::D365, "d"))
        .await
        .unwrap_or_else(|e| panic!("create D365 connection: {e}"));
    let pair = store
        .create_pair(
            tenant,
            &crate::NewPair {
                name: "p".into(),
                shopify_connection_id: shop.id,
                d365_connection_id: erp.id,
                environment: environment.into(),
                flows: vec!["orders".into()],
            },
        )
        .await
        .unwrap_or_else(|e| panic!("create pair: {e}"));
    (tenant, pair)
}
