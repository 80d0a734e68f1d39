use thiserror::Error;

/// Errors of the persistence layer. Messages never carry SQL or driver text meant for end users.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database could not be reached or opened.
    #[error("cannot connect to the {backend} database: {reason}")]
    Connect {
        /// Which backend was being opened.
        backend: &'static str,
        /// A human-readable cause (never contains credentials).
        reason: String,
    },
    /// Migrations failed to apply.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A named unique constraint was violated.
    #[error("conflict on {constraint}")]
    Conflict {
        /// The constraint's name, e.g. `uq_tenants_slug`.
        constraint: String,
    },
    /// The row does not exist (or belongs to another tenant).
    #[error("not found")]
    NotFound,
    /// A stored value could not be interpreted.
    #[error("corrupt stored value in {what}: {detail}")]
    Corrupt {
        /// Which column or record.
        what: &'static str,
        /// Why it could not be read.
        detail: String,
    },
    /// Secrets were used on a store built without [`crate::Store::with_keyring`].
    #[error(
        "no master key configured: set SYNCLINE_MASTER_KEY or SYNCLINE_MASTER_KEY_FILE to use secrets"
    )]
    NoKeyring,
    /// Encryption or decryption of a secret or data key failed.
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    /// Any other database error.
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
                constraint: unique_constraint_name(db.as_ref()),
            },
            _ => StoreError::Database(error),
        }
    }
}

/// PostgreSQL names the violated constraint; SQLite only names the columns
/// (`UNIQUE constraint failed: tenants.slug`), so SQLite constraint names are
/// reconstructed from the table and columns following our `uq_<table>_<cols>` convention.
fn unique_constraint_name(db: &dyn sqlx::error::DatabaseError) -> String {
    if let Some(name) = db.constraint() {
        return name.to_owned();
    }
    let message = db.message();
    let Some(columns) = message.strip_prefix("UNIQUE constraint failed: ") else {
        return "unknown".to_owned();
    };
    let mut table = "";
    let mut names = Vec::new();
    for qualified in columns.split(", ") {
        if let Some((t, column)) = qualified.split_once('.') {
            table = t;
            names.push(column);
        }
    }
    format!("uq_{table}_{}", names.join("_"))
}

impl StoreError {
    /// True when this is a violation of the named unique constraint.
    pub fn is_conflict_on(&self, constraint: &str) -> bool {
        matches!(self, StoreError::Conflict { constraint: c } if c == constraint)
    }
}
