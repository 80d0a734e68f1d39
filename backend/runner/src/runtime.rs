//! The worker side of a process in one call: the worker pool running the flows, and the
//! sweeper. `syncline serve`, `syncline demo` and the tests start it the same way.

use std::sync::Arc;

use syncline_store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    Dispatcher, FlowEngine, FlowOptions, RateLimiter, SweeperOptions, WorkerPool,
    WorkerPoolOptions, run_sweeper,
};

/// Settings of the worker side.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Concurrency and polling.
    pub workers: WorkerPoolOptions,
    /// Leases, retries, rate limits.
    pub flows: FlowOptions,
    /// Re-dispatching.
    pub sweeper: SweeperOptions,
}

/// Starts the worker pool and the sweeper; the handle finishes once `shutdown` is cancelled
/// and in-flight runs have finished.
pub fn spawn_runtime(
    store: Store,
    dispatcher: Arc<dyn Dispatcher>,
    limiter: Arc<dyn RateLimiter>,
    options: RuntimeOptions,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>, syncline_core::templates::TemplateError> {
    let engine = Arc::new(FlowEngine::new(
        store.clone(),
        Arc::clone(&dispatcher),
        limiter,
        options.flows,
    )?);
    let sweeper = tokio::spawn(run_sweeper(
        store,
        Arc::clone(&dispatcher),
        options.sweeper,
        shutdown.clone(),
    ));
    let pool = tokio::spawn(WorkerPool::run(
        dispatcher,
        engine,
        options.workers,
        shutdown,
    ));
    Ok(tokio::spawn(async move {
        if let Err(error) = pool.await {
            tracing::error!(%error, "worker pool ended abnormally");
        }
        if let Err(error) = sweeper.await {
            tracing::error!(%error, "sweeper ended abnormally");
        }
    }))
}
