use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A pointer to work: the kind of job and the id of the database row that describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Which handler runs it, e.g. `inbox`.
    pub kind: String,
    /// The row id the handler loads.
    pub id: String,
    /// The owning tenant, used for fair scheduling; `None` for platform jobs.
    pub tenant: Option<String>,
}

/// A job handed to one consumer; acknowledge it when done.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The job.
    pub job: Job,
    /// Dispatcher-specific receipt (the stream entry id on Redis).
    pub receipt: String,
    /// How many times this job has been delivered, 1 on the first try.
    pub delivery_count: u64,
}

/// Errors talking to the dispatcher's backend.
#[derive(Debug, Error)]
pub enum DispatchError {
    /// Redis could not be reached or answered an error.
    #[error("Redis: {0}")]
    Redis(String),
    /// A queued entry could not be understood.
    #[error("malformed queue entry {receipt}: {reason}")]
    Malformed {
        /// The entry's receipt.
        receipt: String,
        /// What was wrong.
        reason: String,
    },
    /// The dispatcher has been shut down.
    #[error("dispatcher closed")]
    Closed,
}

/// Hands job pointers from producers (web intake, scheduler, sweeper) to workers.
///
/// Delivery is at least once: a job whose consumer dies before [`Dispatcher::ack`] is delivered
/// again (Redis), or re-dispatched by the database sweeper (in-process).
pub trait Dispatcher: Send + Sync + 'static {
    /// Queues a job.
    fn enqueue(&self, job: Job) -> BoxFuture<'_, Result<(), DispatchError>>;
    /// Waits up to `max_wait` for the next job; `None` when there was none.
    fn receive(&self, max_wait: Duration)
    -> BoxFuture<'_, Result<Option<Delivery>, DispatchError>>;
    /// Marks a delivery as done so it is never delivered again.
    fn ack<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<(), DispatchError>>;
    /// Answers when the backend is reachable; used by readiness checks.
    fn health(&self) -> BoxFuture<'_, Result<(), DispatchError>>;
    /// A short name for logs and readiness output: `in-process` or `redis`.
    fn name(&self) -> &'static str;
    /// Changes whenever the backend was found to have lost its queued entries (a Redis
    /// restart without persistence), so the sweeper hands out every due run again.
    fn generation(&self) -> u64 {
        0
    }
}
