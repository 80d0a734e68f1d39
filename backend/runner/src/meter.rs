//! Partner API calls counted for fair use. Every run adds its calls here and a flusher writes
//! the sums once a second: one upsert per pair and day instead of one per run, which under
//! load made every worker queue for the same `usage_daily` row's lock.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::NaiveDate;
use syncline_store::{PairId, Store, TenantId};
use tokio_util::sync::CancellationToken;

/// How often the counted calls are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Calls counted in this process and not written yet.
#[derive(Debug, Default)]
pub struct ApiCallMeter {
    pending: Mutex<HashMap<(TenantId, PairId, NaiveDate), i64>>,
}

impl ApiCallMeter {
    /// Counts `calls` for a pair's day.
    pub fn add(&self, tenant: TenantId, pair: PairId, day: NaiveDate, calls: i64) {
        if calls > 0 {
            *self
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry((tenant, pair, day))
                .or_default() += calls;
        }
    }

    /// Writes what was counted; what could not be written is kept for the next flush.
    pub async fn flush(&self, store: &Store) {
        let counted =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        for ((tenant, pair, day), calls) in counted {
            if let Err(error) = store.add_api_calls(tenant, pair, day, calls).await {
                tracing::warn!(%error, pair_id = %pair, "counting partner API calls failed; trying again shortly");
                self.add(tenant, pair, day, calls);
            }
        }
    }

    /// Flushes every [`FLUSH_EVERY`] until `shutdown`, then once more.
    pub async fn run(&self, store: Store, shutdown: CancellationToken) {
        loop {
            let stop = tokio::select! {
                () = shutdown.cancelled() => true,
                () = tokio::time::sleep(FLUSH_EVERY) => false,
            };
            self.flush(&store).await;
            if stop {
                return;
            }
        }
    }
}
