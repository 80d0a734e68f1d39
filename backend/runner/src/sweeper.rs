//! The sweeper: the database is the truth about work, the queue only a hint. Every tick it
//! routes events that were stored but never routed, and hands the dispatcher every run whose
//! time has come and whose last hand-off is stale: new runs whose queue entry was lost (a
//! restart of the embedded default, a Redis restart), retries that are due, and runs whose
//! worker died (lease expired).

use std::sync::Arc;
use std::time::Duration;

use syncline_store::Store;
use tokio_util::sync::CancellationToken;

use crate::Dispatcher;
use crate::routing::run_job;

/// Settings of the sweeper.
#[derive(Debug, Clone)]
pub struct SweeperOptions {
    /// Time between passes.
    pub interval: Duration,
    /// A queued run handed off this long ago without being picked up is handed off again.
    pub redispatch_after: Duration,
    /// Runs handed off per query.
    pub batch: u32,
}

impl Default for SweeperOptions {
    fn default() -> Self {
        SweeperOptions {
            interval: Duration::from_secs(1),
            redispatch_after: Duration::from_secs(60),
            batch: 1000,
        }
    }
}

/// Runs passes until `shutdown` is cancelled.
pub async fn run_sweeper(
    store: Store,
    dispatcher: Arc<dyn Dispatcher>,
    options: SweeperOptions,
    shutdown: CancellationToken,
) {
    // After a start nothing in an in-process queue survives, and after a lost Redis nothing in
    // the stream does: then every due run is handed off, however recently it was.
    let mut generation = None;
    loop {
        let current = dispatcher.generation();
        let force = generation != Some(current);
        match sweep(&store, dispatcher.as_ref(), &options, force).await {
            Ok(handed) => {
                generation = Some(current);
                if handed > 0 {
                    tracing::debug!(handed, force, "sweeper handed out due runs");
                }
            }
            Err(error) => tracing::warn!(%error, "sweeper pass failed; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(options.interval) => {}
        }
    }
}

/// One pass; returns how many runs were handed to the dispatcher.
pub async fn sweep(
    store: &Store,
    dispatcher: &dyn Dispatcher,
    options: &SweeperOptions,
    force: bool,
) -> Result<usize, syncline_store::StoreError> {
    let settle = chrono::Duration::seconds(5);
    for (tenant, inbox_id) in store
        .unrouted_inbox(chrono::Utc::now() - settle, options.batch)
        .await?
    {
        if let Err(error) = crate::routing::route_event(store, dispatcher, tenant, inbox_id).await {
            tracing::warn!(%error, %inbox_id, "routing a stored event failed");
        }
    }
    let stale = chrono::Duration::from_std(options.redispatch_after)
        .unwrap_or_else(|_| chrono::Duration::seconds(60));
    let mut handed = 0;
    loop {
        let due = store.due_runs(options.batch, stale, force).await?;
        let count = due.len();
        for (tenant, id) in due {
            if let Err(error) = dispatcher.enqueue(run_job(tenant, id)).await {
                // The row stays due: the next pass after `redispatch_after` tries again.
                tracing::warn!(%error, "handing a due run to the dispatcher failed");
                return Ok(handed);
            }
            handed += 1;
        }
        if count < options.batch as usize {
            return Ok(handed);
        }
    }
}
