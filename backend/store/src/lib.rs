//! Persistence of Syncline: one interface over SQLite (embedded default) and PostgreSQL (cluster).
//!
//! Every query is written once and runs on either backend through [`on_pool!`]: the SQL uses
//! `$n` placeholders and `RETURNING`, which both engines accept, and all timestamps come from
//! Rust so no engine-specific clock functions are needed.

mod accounts;
mod alerts;
mod audit;
mod billing;
mod connections;
pub mod crypto;
mod digest;
mod error;
mod ids;
mod inbox;
mod intake;
mod mappings;
mod pool;
mod runs;
mod secrets;
mod tenants;
#[cfg(feature = "testing")]
pub mod testing;

pub use accounts::{
    ActionKind, ActionToken, ApiKey, Member, NewActionToken, NewApiKey, NewUser, Role, Session,
    TenantSummary, User,
};
pub use alerts::{
    AlertChannel, AlertDelivery, AlertKind, AlertRule, AlertRuleUpdate, ChannelKind, Incident,
    Measurement, NewChannel, NewIncident, WebhookCheck, channel_secret_prefix,
};
pub use audit::{AuditEntry, NewAuditEntry};
pub use billing::{
    BillableEvent, BillingNotice, DailyUsage, Invoice, InvoiceLine, InvoiceStatus, Issuer, NewPlan,
    Plan, Subscription, SubscriptionChange, SubscriptionStatus,
};
pub use connections::{
    Connection, ConnectionKind, NewConnection, NewPair, Pair, PairStatus, PairWebhook, RunContext,
    RunEvent,
};
pub use digest::{DigestFigures, DigestSettings, PairDigest};
pub use error::StoreError;
pub use ids::{
    ActionTokenId, AlertRuleId, ApiKeyId, ChannelId, ConnectionId, InboxId, IncidentId, InvoiceId,
    PairId, PlanId, RunId, SessionId, TenantId, UserId,
};
pub use inbox::{InboxEvent, InboxInsert, InboxStatus, NewInboxEvent};
pub use intake::{ActivePair, IntakeEvent, IntakeRoutes, IntakeStored, PlannedRun, WebhookTarget};
pub use mappings::{MappingDraft, MappingVersion};
pub use pool::{Backend, SqliteSettings, Store, StoreOptions};
pub use runs::{
    HourlyRuns, LinkClaim, NewRun, PairActivity, Run, RunActivity, RunAttempt, RunFilter,
    RunOutcome, RunPage, RunStatus,
};
pub use secrets::{RotationFailure, RotationReport, SecretId, SecretMeta};
pub use tenants::{NewTenant, Tenant, TenantStatus};
