//! Process-wide counts of Admin API requests, for the metrics endpoint. The connector knows
//! nothing of Prometheus (like the D365 connector's token counter); the runner's metrics read
//! these totals at scrape time. Nothing here is labelled by shop or tenant.

use std::sync::atomic::{AtomicU64, Ordering};

static OK: AtomicU64 = AtomicU64::new(0);
static THROTTLED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);
static COST: AtomicU64 = AtomicU64::new(0);

/// Totals of this process's Admin API requests so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Requests answered without an error.
    pub ok: u64,
    /// Requests refused as throttled (GraphQL `THROTTLED` or HTTP 429).
    pub throttled: u64,
    /// Requests that failed otherwise (network, 5xx, 401, GraphQL errors).
    pub error: u64,
    /// GraphQL cost points charged (`actualQueryCost`), summed.
    pub cost_points: u64,
}

/// The totals so far.
pub fn call_stats() -> CallStats {
    CallStats {
        ok: OK.load(Ordering::Relaxed),
        throttled: THROTTLED.load(Ordering::Relaxed),
        error: FAILED.load(Ordering::Relaxed),
        cost_points: COST.load(Ordering::Relaxed),
    }
}

/// Counts one request by its outcome, and the cost Shopify charged for it.
pub(super) fn record(outcome: Result<(), bool>, actual_cost: Option<f64>) {
    match outcome {
        Ok(()) => OK.fetch_add(1, Ordering::Relaxed),
        Err(true) => THROTTLED.fetch_add(1, Ordering::Relaxed),
        Err(false) => FAILED.fetch_add(1, Ordering::Relaxed),
    };
    if let Some(cost) = actual_cost.filter(|c| c.is_finite() && *c > 0.0) {
        // Costs are whole points; rounding keeps a fractional answer from being lost.
        COST.fetch_add(cost.round() as u64, Ordering::Relaxed);
    }
}
