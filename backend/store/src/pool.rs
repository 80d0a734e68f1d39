use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgConnection, PgPool, SqlitePool};

use crate::StoreError;
use crate::crypto::Keyring;

/// Runs `$body` with `$pool` bound to the concrete pool of either backend. The body is compiled
/// once per backend, so one query text serves both. For statements that only read; writes go
/// through [`on_write!`].
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::pool::Pool::Sqlite { read: $pool, .. } => $body,
            $crate::pool::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// [`on_pool!`] for statements that write. On SQLite they all queue for one writer
/// connection: SQLite admits one writer at a time, and a second connection that tries is
/// answered "busy" and sleeps in SQLite's busy handler (1 ms, 2 ms, 5 ms, … up to 100 ms)
/// instead of waiting its turn, which under load cost most of the intake's throughput and
/// its tail latency. PostgreSQL writes concurrently, so there it is the one pool.
macro_rules! on_write {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::pool::Pool::Sqlite { write: $pool, .. } => $body,
            $crate::pool::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_write;

/// The database engine behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file: the embedded default.
    Sqlite,
    /// PostgreSQL: cluster mode.
    Postgres,
}

impl Backend {
    /// The engine's display name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

#[derive(Clone)]
pub(crate) enum Pool {
    /// Readers share `read`; every write queues for the single connection of `write`.
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
    },
    Postgres(PgPool),
}

/// Settings for the embedded SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteSettings {
    /// The database file; created with its directory when missing.
    pub path: PathBuf,
}

/// Where the store lives.
#[derive(Clone)]
pub enum StoreOptions {
    /// The embedded default.
    Sqlite(SqliteSettings),
    /// A PostgreSQL URL (may contain a password: never print it).
    Postgres {
        /// `postgres://…`
        url: String,
        /// Maximum pooled connections.
        max_connections: u32,
    },
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreOptions::Sqlite(settings) => f.debug_tuple("Sqlite").field(settings).finish(),
            StoreOptions::Postgres {
                max_connections, ..
            } => f
                .debug_struct("Postgres")
                .field("url", &"[redacted]")
                .field("max_connections", max_connections)
                .finish(),
        }
    }
}

/// All persistence, over either backend. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    /// Master keys for secrets; shared by clones so an in-process rotation reaches all of them.
    pub(crate) keyring: Option<Arc<RwLock<Arc<Keyring>>>>,
    /// Webhook deliveries waiting to be committed together; shared by clones.
    pub(crate) intake: Arc<crate::intake::IntakeQueue>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish()
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a write may wait for SQLite's one writer connection.
const WRITE_QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

impl Store {
    /// Opens the database (creating the SQLite file when missing) without migrating it.
    pub async fn connect(options: &StoreOptions) -> Result<Store, StoreError> {
        match options {
            StoreOptions::Sqlite(settings) => Self::connect_sqlite(settings).await,
            StoreOptions::Postgres {
                url,
                max_connections,
            } => Self::connect_postgres(url, *max_connections).await,
        }
    }

    async fn connect_sqlite(settings: &SqliteSettings) -> Result<Store, StoreError> {
        let connect_error = |reason: String| StoreError::Connect {
            backend: "SQLite",
            reason,
        };
        if let Some(dir) = settings.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| connect_error(format!("cannot create {}: {e}", dir.display())))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(&settings.path)
            .create_if_missing(true)
            // WAL lets the web server read while a worker writes.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // No memory map: in WAL mode a connection unmaps the whole file whenever another one
        // has committed since its last read, which under a steady stream of writes meant an
        // munmap (and TLB shootdowns on every core) for nearly every read.
        let open_error = |e: sqlx::Error| {
            connect_error(format!("{}: {}", settings.path.display(), describe(&e)))
        };
        // The writer first: it creates the file and switches it to WAL before readers open it.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            // A ping before each use is a round trip to the connection's thread for a file
            // that cannot drop off a network: under load it was one in every three.
            .test_before_acquire(false)
            // Writers queue here rather than in SQLite; a deep queue under a burst is a wait,
            // not a failure.
            .acquire_timeout(WRITE_QUEUE_TIMEOUT)
            // Only the writer keeps its page cache between transactions (a reader's is
            // emptied each time another connection committed), so only it gets a large one:
            // the working set of inbox, runs and links stays in memory.
            .connect_with(options.clone().pragma("cache_size", "-32768"))
            .await
            .map_err(open_error)?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .acquire_timeout(CONNECT_TIMEOUT)
            // A reader's cache is emptied whenever another connection committed since its last
            // read, which under a stream of writes is nearly every time; emptying a large one
            // cost more than the pages it saved re-reading.
            .connect_with(options.pragma("cache_size", "-512"))
            .await
            .map_err(open_error)?;
        Ok(Store {
            pool: Pool::Sqlite { read, write },
            keyring: None,
            intake: Arc::default(),
        })
    }

    async fn connect_postgres(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let connect_error = |reason: String| StoreError::Connect {
            backend: "PostgreSQL",
            reason,
        };
        let mut options = PgConnectOptions::from_str(url)
            .map_err(|_| connect_error("DATABASE_URL is not a valid postgres:// URL".into()))?;
        if is_loopback(&options) && !states_sslmode(url) {
            // libpq's default `prefer` encrypts even over loopback, where there is no network
            // to protect: TLS then cost a quarter of the intake process's time. A stated
            // `sslmode` is always obeyed.
            options = options.ssl_mode(PgSslMode::Disable);
        }
        let target = format!("{}:{}", options.get_host(), options.get_port());
        // The pool retries until its timeout and then only says "timed out"; one direct attempt
        // first surfaces the real cause (refused, unknown host, bad password).
        let probe = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| connect_error(format!("{target}: timed out while connecting")))?
            .map_err(|e| connect_error(format!("{target}: {}", describe(&e))))?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| connect_error(format!("{target}: {}", describe(&e))))?;
        Ok(Store {
            pool: Pool::Postgres(pool),
            keyring: None,
            intake: Arc::default(),
        })
    }

    /// This store with a small pool of its own (for reads; on PostgreSQL for writes too), for
    /// work that must not queue behind the workers for a connection: the webhook intake, which
    /// Shopify times out after 5 s. On SQLite writes still share the one writer. Connections
    /// open when first needed.
    pub fn with_own_connections(&self, max_connections: u32) -> Store {
        let max_connections = max_connections.max(1);
        let pool = match &self.pool {
            Pool::Sqlite { read, write } => Pool::Sqlite {
                read: SqlitePoolOptions::new()
                    .max_connections(max_connections)
                    .test_before_acquire(false)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_lazy_with((*read.connect_options()).clone()),
                write: write.clone(),
            },
            Pool::Postgres(pool) => Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_lazy_with((*pool.connect_options()).clone()),
            ),
        };
        Store {
            pool,
            keyring: self.keyring.clone(),
            intake: Arc::clone(&self.intake),
        }
    }

    /// Applies pending migrations from `migrations/<backend>/`.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite { write, .. } => {
                sqlx::migrate!("../../migrations/sqlite").run(write).await?
            }
            Pool::Postgres(pool) => {
                sqlx::migrate!("../../migrations/postgres")
                    .run(pool)
                    .await?
            }
        }
        Ok(())
    }

    /// Answers when the database accepts a trivial query; used by readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// This store with the master keys that protect secrets; without them secret calls fail
    /// with [`StoreError::NoKeyring`].
    pub fn with_keyring(mut self, keyring: Keyring) -> Store {
        self.keyring = Some(Arc::new(RwLock::new(Arc::new(keyring))));
        self
    }

    /// Replaces the key ring of this store and all its clones (a reloaded key file); without a
    /// key ring yet, this is a no-op: use [`Store::with_keyring`].
    pub fn replace_keyring(&self, keyring: Keyring) {
        if let Some(cell) = &self.keyring {
            *cell
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keyring);
        }
    }

    /// Which engine this store runs on.
    pub fn backend(&self) -> Backend {
        match &self.pool {
            Pool::Sqlite { .. } => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes every pooled connection; SQLite checkpoints its WAL on the last close.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

/// Whether the server is this machine: a loopback address, `localhost` or a Unix socket.
fn is_loopback(options: &PgConnectOptions) -> bool {
    let host = options.get_host();
    host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether the URL (or `PGSSLMODE`) says how to use TLS.
fn states_sslmode(url: &str) -> bool {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    query
        .split('&')
        .any(|pair| pair.starts_with("sslmode=") || pair.starts_with("ssl-mode="))
        || std::env::var_os("PGSSLMODE").is_some()
}

/// A one-line cause for connection failures: the driver's own text, minus anything that could
/// echo a URL back (sqlx never includes the password, but keep it short and human).
fn describe(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::PoolTimedOut => "timed out while connecting".to_owned(),
        sqlx::Error::Tls(tls) => format!("TLS error: {tls}"),
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    }
}

impl Store {
    /// Runs one statement with no parameters; for administrative SQL in tools and tests.
    pub async fn execute_raw(&self, sql: &str) -> Result<(), StoreError> {
        on_write!(self, pool => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(url: &str) -> PgConnectOptions {
        PgConnectOptions::from_str(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn only_a_server_on_this_machine_counts_as_loopback() {
        for url in [
            "postgres://u@127.0.0.1/db",
            "postgres://u@localhost:5433/db",
            "postgres://u@[::1]/db",
            "postgres://u@%2Fvar%2Frun%2Fpostgresql/db",
        ] {
            assert!(is_loopback(&options(url)), "{url}");
        }
        for url in ["postgres://u@10.0.0.5/db", "postgres://u@db.example.com/db"] {
            assert!(!is_loopback(&options(url)), "{url}");
        }
    }

    #[test]
    fn a_stated_sslmode_is_recognised() {
        assert!(states_sslmode("postgres://u@127.0.0.1/db?sslmode=require"));
        assert!(states_sslmode(
            "postgres://u@127.0.0.1/db?application_name=x&sslmode=verify-full"
        ));
        assert!(!states_sslmode(
            "postgres://u@127.0.0.1/db?application_name=x"
        ));
    }
}
