//! Dispatcher, workers and scheduler of Syncline.
//!
//! The database row is the truth about work; the dispatcher only says "look at row X now".
//! Two dispatchers share one trait: in-process (embedded default) and Redis Streams (cluster).

mod alerts;
pub mod billing;
mod dispatch;
mod fairness;
mod flows;
mod limiter;
mod memory;
mod meter;
pub mod metrics;
mod redis_streams;
mod retry;
mod routing;
mod runtime;
mod sweeper;
mod topics;
mod workers;

pub use alerts::{
    AlertEvaluator, AlertOptions, DigestReport, MailTransport, NotificationKind, Notifier,
    NotifyError, SIGNATURE_HEADER, TickReport, WebhookCheckReport, WebhookFormat,
    check_due_webhooks, check_pair_webhooks, render_digest, send_due_digests, sign_payload,
    spawn_alerts, verify_signature,
};
pub use dispatch::{Delivery, DispatchError, Dispatcher, Job};
pub use fairness::FairQueue;
pub use flows::{
    Billable, D365Clients, FlowEngine, FlowError, FlowOptions, FlowSuccess, d365_config,
    secret_name,
};
pub use limiter::{
    InProcessRateLimiter, LimiterError, PENALTY_RECHECK, RateLimit, RateLimiter, RedisRateLimiter,
};
pub use memory::InProcessDispatcher;
pub use redis_streams::{RedisDispatcher, RedisDispatcherOptions};
pub use retry::{Decision, Failure, RetryPolicy};
pub use routing::{
    RoutePlan, fill_input_snapshots, flow_for_topic, input_snapshot, plan_route, route_event,
    run_job,
};
pub use runtime::{RuntimeError, RuntimeOptions, lower_priority, spawn_runtime};
pub use sweeper::{SweeperOptions, run_sweeper, sweep};
pub use topics::{
    ALWAYS_TOPICS, FLOWS, ShopifyClientError, shopify_client, topics_for, webhook_callback_url,
};
pub use workers::{HandlerError, JobHandler, WorkerPool, WorkerPoolOptions};
