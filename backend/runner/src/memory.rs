use std::sync::Mutex;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::Notify;

use crate::fairness::FairQueue;
use crate::{Delivery, DispatchError, Dispatcher, Job};

/// The embedded default's dispatcher: per-tenant queues inside the process, served
/// round-robin so one tenant's backlog never starves another tenant's events. Nothing
/// survives a restart by design; the database sweeper re-dispatches unfinished rows on start.
pub struct InProcessDispatcher {
    queue: Mutex<FairQueue<Job>>,
    ready: Notify,
}

impl InProcessDispatcher {
    /// A new, empty dispatcher.
    pub fn new() -> Self {
        InProcessDispatcher {
            queue: Mutex::new(FairQueue::new()),
            ready: Notify::new(),
        }
    }

    /// A poisoned lock only means a panic elsewhere mid-push; the queue itself is intact.
    fn queue(&self) -> std::sync::MutexGuard<'_, FairQueue<Job>> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn pop(&self) -> Option<Job> {
        self.queue().pop().map(|(_, job)| job)
    }

    /// Jobs waiting.
    pub fn len(&self) -> usize {
        self.queue().len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for InProcessDispatcher {
    fn default() -> Self {
        Self::new()
    }
}

impl Dispatcher for InProcessDispatcher {
    fn enqueue(&self, job: Job) -> BoxFuture<'_, Result<(), DispatchError>> {
        self.queue()
            .push(job.tenant.clone().unwrap_or_default(), job);
        self.ready.notify_one();
        async { Ok(()) }.boxed()
    }

    fn receive(
        &self,
        max_wait: Duration,
    ) -> BoxFuture<'_, Result<Option<Delivery>, DispatchError>> {
        async move {
            let deadline = tokio::time::Instant::now() + max_wait;
            loop {
                // Register interest before looking, so an enqueue in between is not missed.
                let notified = self.ready.notified();
                if let Some(job) = self.pop() {
                    return Ok(Some(Delivery {
                        job,
                        receipt: String::new(),
                        delivery_count: 1,
                    }));
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    return Ok(None);
                }
            }
        }
        .boxed()
    }

    fn ack<'a>(&'a self, _delivery: &'a Delivery) -> BoxFuture<'a, Result<(), DispatchError>> {
        async { Ok(()) }.boxed()
    }

    fn health(&self) -> BoxFuture<'_, Result<(), DispatchError>> {
        async { Ok(()) }.boxed()
    }

    fn name(&self) -> &'static str {
        "in-process"
    }
}
