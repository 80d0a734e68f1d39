//! The worker side of a process in one call: the worker pool running the flows, the
//! sweeper and the API call meter's flusher. `syncline serve`, `syncline demo` and the tests
//! start it the same way.

use std::sync::Arc;

use syncline_store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    Dispatcher, FlowEngine, FlowOptions, RateLimiter, SweeperOptions, WorkerPool,
    WorkerPoolOptions, run_sweeper,
};

/// Why the worker side did not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A built-in mapping template is broken.
    #[error(transparent)]
    Template(#[from] syncline_core::templates::TemplateError),
    /// The workers' own threads could not be started.
    #[error("cannot start the workers' threads: {0}")]
    Threads(String),
}

/// Settings of the worker side.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Concurrency and polling.
    pub workers: WorkerPoolOptions,
    /// Leases, retries, rate limits.
    pub flows: FlowOptions,
    /// Re-dispatching.
    pub sweeper: SweeperOptions,
    /// When above 0 (Linux only), the workers run on threads of their own whose CPU priority
    /// is lowered by this much (Unix nice), so that in a process that also serves HTTP the
    /// webhook intake and the console answer first. 0 runs them on the caller's runtime.
    pub nice: i32,
}

/// Starts the worker pool and the sweeper; the handle finishes once `shutdown` is cancelled
/// and in-flight runs have finished.
pub fn spawn_runtime(
    store: Store,
    dispatcher: Arc<dyn Dispatcher>,
    limiter: Arc<dyn RateLimiter>,
    options: RuntimeOptions,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>, RuntimeError> {
    let Some(runtime) = low_priority_runtime(options.nice) else {
        return spawn_on_current(store, dispatcher, limiter, options, shutdown);
    };
    // The runtime is driven from a thread of its own: async code may not block on one.
    let (started, handle) = std::sync::mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name("syncline-workers".into())
        .spawn(move || {
            runtime.block_on(async move {
                let spawned = spawn_on_current(store, dispatcher, limiter, options, shutdown);
                match spawned {
                    Ok(work) => {
                        let _ = started.send(Ok(()));
                        let _ = work.await;
                    }
                    Err(error) => {
                        let _ = started.send(Err(error));
                    }
                }
            });
            // Never shut down: database connections the workers opened sit in pools the web
            // side shares, and their sockets are driven by this runtime until the process exits.
            std::mem::forget(runtime);
        });
    let thread = match thread {
        Ok(thread) => thread,
        Err(error) => return Err(RuntimeError::Threads(error.to_string())),
    };
    match handle.recv() {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(error),
        Err(_) => {
            return Err(RuntimeError::Threads(
                "the workers' runtime ended while starting".into(),
            ));
        }
    }
    Ok(tokio::task::spawn_blocking(move || {
        if thread.join().is_err() {
            tracing::error!("the workers' runtime ended abnormally");
        }
    }))
}

/// A runtime for the workers whose threads run at a lower CPU priority, or `None` to use the
/// caller's (no lowering asked, not Linux, or it could not be built).
fn low_priority_runtime(nice: i32) -> Option<tokio::runtime::Runtime> {
    if nice <= 0 || !cfg!(target_os = "linux") {
        return None;
    }
    let threads = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let built = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("syncline-worker")
        .on_thread_start(move || {
            if let Err(error) = lower_priority(nice) {
                tracing::warn!(%error, "could not lower a worker thread's CPU priority");
            }
        })
        .enable_all()
        .build();
    match built {
        Ok(runtime) => Some(runtime),
        Err(error) => {
            tracing::warn!(%error, "no runtime of their own for the workers; they share the caller's");
            None
        }
    }
}

/// Lowers CPU priority by `nice` (Unix nice value). On Linux this is the calling thread's,
/// and threads it starts afterwards inherit it; on other Unixes it is the whole process's.
pub fn lower_priority(nice: i32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        rustix::process::setpriority_process(None, nice)?;
    }
    #[cfg(not(unix))]
    let _ = nice;
    Ok(())
}

fn spawn_on_current(
    store: Store,
    dispatcher: Arc<dyn Dispatcher>,
    limiter: Arc<dyn RateLimiter>,
    options: RuntimeOptions,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>, RuntimeError> {
    let engine = Arc::new(FlowEngine::new(
        store.clone(),
        Arc::clone(&dispatcher),
        limiter,
        options.flows,
    )?);
    let meter = Arc::clone(&engine.api_calls);
    let flusher = {
        let (store, shutdown) = (store.clone(), shutdown.clone());
        tokio::spawn(async move { meter.run(store, shutdown).await })
    };
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
        // After the pool: the last runs' calls are counted too.
        if let Err(error) = flusher.await {
            tracing::error!(%error, "the API call meter ended abnormally");
        }
    }))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_workers_runtime_runs_at_the_lowered_priority_and_the_caller_keeps_its_own() {
        let before = rustix::process::getpriority_process(None).unwrap_or_default();
        let runtime = low_priority_runtime(before + 5).unwrap_or_else(|| panic!("no runtime"));
        let inside = runtime
            .block_on(async {
                tokio::spawn(async { rustix::process::getpriority_process(None) }).await
            })
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(inside, before + 5);
        assert_eq!(
            rustix::process::getpriority_process(None).unwrap_or_default(),
            before
        );
        assert!(
            low_priority_runtime(0).is_none(),
            "0 keeps the caller's runtime"
        );
    }
}
