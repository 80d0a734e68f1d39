use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use thiserror::Error;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{Delivery, Dispatcher, Job};

/// Why a handler did not finish a job.
#[derive(Debug, Error)]
pub enum HandlerError {
    /// Try again later: the job stays unacknowledged and is delivered again.
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying cannot help; the job is acknowledged and the handler has recorded why.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// Runs one kind of work. Handlers must be idempotent: delivery is at least once.
pub trait JobHandler: Send + Sync + 'static {
    /// Processes a job.
    fn handle<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), HandlerError>>;
}

/// Settings of a [`WorkerPool`].
#[derive(Debug, Clone)]
pub struct WorkerPoolOptions {
    /// How many jobs run at once in this process.
    pub concurrency: usize,
    /// How long one receive call waits before checking for shutdown.
    pub poll: Duration,
}

impl Default for WorkerPoolOptions {
    fn default() -> Self {
        WorkerPoolOptions {
            concurrency: 8,
            poll: Duration::from_secs(1),
        }
    }
}

/// One receiving loop feeding `concurrency` workers. On cancellation it stops receiving and
/// lets in-flight jobs finish; unfinished Redis deliveries stay pending and are reclaimed.
pub struct WorkerPool;

impl WorkerPool {
    /// Runs until `shutdown` is cancelled and every in-flight job has finished.
    pub async fn run(
        dispatcher: Arc<dyn Dispatcher>,
        handler: Arc<dyn JobHandler>,
        options: WorkerPoolOptions,
        shutdown: CancellationToken,
    ) {
        let concurrency = options.concurrency.max(1);
        // A bounded hand-off: the receiver takes a job only when a worker is free, so jobs are
        // not hoarded by one process while others idle.
        let (sender, receiver) = mpsc::channel::<Delivery>(1);
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        let mut workers = JoinSet::new();
        for _ in 0..concurrency {
            let receiver = Arc::clone(&receiver);
            let dispatcher = Arc::clone(&dispatcher);
            let handler = Arc::clone(&handler);
            workers.spawn(async move {
                loop {
                    let next = receiver.lock().await.recv().await;
                    let Some(delivery) = next else { break };
                    run_one(dispatcher.as_ref(), handler.as_ref(), delivery).await;
                }
            });
        }

        let mut backoff = Duration::from_millis(100);
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => break,
                received = dispatcher.receive(options.poll) => received,
            };
            match received {
                Ok(Some(delivery)) => {
                    backoff = Duration::from_millis(100);
                    if sender.send(delivery).await.is_err() {
                        break;
                    }
                }
                Ok(None) => backoff = Duration::from_millis(100),
                Err(error) => {
                    tracing::warn!(%error, dispatcher = dispatcher.name(), "receiving jobs failed; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        drop(sender);
        while workers.join_next().await.is_some() {}
    }
}

async fn run_one(dispatcher: &dyn Dispatcher, handler: &dyn JobHandler, delivery: Delivery) {
    let job = &delivery.job;
    let span = tracing::info_span!("job", kind = %job.kind, id = %job.id, tenant_id = job.tenant.as_deref().unwrap_or(""), attempt = delivery.delivery_count);
    run_one_in_span(dispatcher, handler, &delivery)
        .instrument(span)
        .await;
}

async fn run_one_in_span(
    dispatcher: &dyn Dispatcher,
    handler: &dyn JobHandler,
    delivery: &Delivery,
) {
    let job = &delivery.job;
    match handler.handle(job).await {
        Ok(()) => {}
        Err(HandlerError::Transient(reason)) => {
            tracing::warn!(%reason, "job failed transiently; it will be delivered again");
            return;
        }
        Err(HandlerError::Permanent(reason)) => tracing::error!(%reason, "job failed permanently"),
    }
    if let Err(error) = dispatcher.ack(delivery).await {
        tracing::warn!(%error, "acknowledging a job failed; it may be delivered again");
    }
}
