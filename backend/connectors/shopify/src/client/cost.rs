//! A per-client estimate of Shopify's GraphQL cost bucket.
//!
//! Shopify refuses (`THROTTLED`) a query whose *requested* cost does not fit
//! in the bucket, so the client waits before sending until it would fit. The
//! estimate is reset from every response's `throttleStatus`.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

/// `extensions.cost.throttleStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleStatus {
    /// Bucket size.
    pub maximum_available: f64,
    /// Points in the bucket now.
    pub currently_available: f64,
    /// Points restored per second.
    pub restore_rate: f64,
}

/// `extensions.cost`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryCost {
    /// Cost the bucket had to hold up front.
    #[serde(default)]
    pub requested_query_cost: Option<f64>,
    /// Cost charged (null when throttled).
    #[serde(default)]
    pub actual_query_cost: Option<f64>,
    /// Bucket state after the query.
    pub throttle_status: ThrottleStatus,
}

impl QueryCost {
    /// How long until `requested` points are available, from this status.
    pub fn wait_for(&self, requested: f64) -> Duration {
        let s = &self.throttle_status;
        wait(requested - s.currently_available, s.restore_rate)
    }
}

fn wait(missing: f64, rate: f64) -> Duration {
    if missing <= 0.0 {
        return Duration::ZERO;
    }
    let rate = if rate > 0.0 { rate } else { 1.0 };
    // A little slack so the bucket has really refilled when we arrive.
    Duration::from_secs_f64((missing / rate + 0.05).min(3600.0))
}

#[derive(Debug)]
struct State {
    known: bool,
    maximum: f64,
    available: f64,
    restore_rate: f64,
    at: Instant,
}

/// The estimate, shared by every clone of a client.
#[derive(Debug)]
pub(crate) struct CostBucket {
    state: Mutex<State>,
}

impl CostBucket {
    pub(crate) fn new() -> Self {
        CostBucket {
            state: Mutex::new(State {
                known: false,
                maximum: 0.0,
                available: 0.0,
                restore_rate: 0.0,
                at: Instant::now(),
            }),
        }
    }

    /// Waits until `cost` fits, then reserves it. `Err(maximum)` when it never can.
    pub(crate) async fn acquire(&self, cost: f64) -> Result<Duration, f64> {
        let mut waited = Duration::ZERO;
        loop {
            let pause = {
                let mut s = self.state.lock().await;
                if !s.known {
                    return Ok(waited);
                }
                if cost > s.maximum {
                    return Err(s.maximum);
                }
                let now = Instant::now();
                let refill = now.duration_since(s.at).as_secs_f64() * s.restore_rate;
                s.available = (s.available + refill).min(s.maximum);
                s.at = now;
                if s.available >= cost {
                    s.available -= cost;
                    return Ok(waited);
                }
                wait(cost - s.available, s.restore_rate)
            };
            tracing::debug!(
                cost,
                wait_ms = pause.as_millis() as u64,
                "waiting for the Shopify cost bucket"
            );
            tokio::time::sleep(pause).await;
            waited += pause;
        }
    }

    /// Takes Shopify's view of the bucket as the new estimate.
    pub(crate) async fn observe(&self, status: &ThrottleStatus) {
        let mut s = self.state.lock().await;
        s.known = true;
        s.maximum = status.maximum_available;
        s.available = status.currently_available.min(status.maximum_available);
        s.restore_rate = status.restore_rate;
        s.at = Instant::now();
    }

    /// The current estimate `(available, maximum, restore_rate)`, if known.
    pub(crate) async fn snapshot(&self) -> Option<ThrottleStatus> {
        let s = self.state.lock().await;
        s.known.then(|| ThrottleStatus {
            maximum_available: s.maximum,
            currently_available: (s.available
                + Instant::now().duration_since(s.at).as_secs_f64() * s.restore_rate)
                .min(s.maximum),
            restore_rate: s.restore_rate,
        })
    }
}
