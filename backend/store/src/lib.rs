//! Persistence of Syncline: one interface over SQLite (embedded default) and PostgreSQL (cluster).
//!
//! Every query is written once and runs on either backend through [`on_pool!`]: the SQL uses
//! `$n` placeholders and `RETURNING`, which both engines accept, and all timestamps come from
//! Rust so no engine-specific clock functions are needed.

mod audit;
mod error;
mod ids;
mod pool;
mod tenants;
#[cfg(feature = "testing")]
pub mod testing;

pub use audit::{AuditEntry, NewAuditEntry};
pub use error::StoreError;
pub use ids::TenantId;
pub use pool::{Backend, SqliteSettings, Store, StoreOptions};
pub use tenants::{NewTenant, Tenant, TenantStatus};
