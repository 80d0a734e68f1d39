//! Service protection: a per-client budget of requests per sliding window and
//! of concurrent requests, answered with 429 and `Retry-After` like F&O's
//! user-based limits (defaults: 6,000 requests per 5 minutes, 52 concurrent).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Budget per client (per app registration).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Requests allowed per window (`$batch` operations count one each).
    pub requests_per_window: u32,
    /// Window length in seconds.
    pub window_secs: u64,
    /// Concurrent requests allowed.
    pub max_concurrent: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            requests_per_window: 6_000,
            window_secs: 300,
            max_concurrent: 52,
        }
    }
}

#[derive(Debug, Default)]
struct Budget {
    hits: VecDeque<Instant>,
    in_flight: u32,
}

/// Throttle state for all clients.
#[derive(Debug, Default)]
pub struct Throttle {
    /// Current configuration.
    pub config: ThrottleConfig,
    clients: HashMap<String, Budget>,
    /// Operations admitted since the last reset, all clients: what the budget served.
    served: u64,
}

impl Throttle {
    /// New throttle with the given budget.
    pub fn new(config: ThrottleConfig) -> Throttle {
        Throttle {
            config,
            clients: HashMap::new(),
            served: 0,
        }
    }

    /// Forgets all counters.
    pub fn reset(&mut self) {
        self.clients.clear();
        self.served = 0;
    }

    /// Operations admitted since the last reset (each `$batch` operation counts, as in F&O).
    pub fn served(&self) -> u64 {
        self.served
    }

    /// Counts one request; `Err(seconds)` when over the window budget.
    pub fn charge(&mut self, client: &str) -> Result<(), u64> {
        let window = Duration::from_secs(self.config.window_secs.max(1));
        let limit = self.config.requests_per_window as usize;
        let b = self.clients.entry(client.to_string()).or_default();
        let now = Instant::now();
        while b
            .hits
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            b.hits.pop_front();
        }
        if b.hits.len() >= limit {
            let wait = b
                .hits
                .front()
                .map(|t| window.saturating_sub(now.duration_since(*t)))
                .unwrap_or(window);
            // Round up: a client that waits exactly Retry-After must get through.
            return Err((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1));
        }
        b.hits.push_back(now);
        self.served += 1;
        Ok(())
    }

    /// Starts a request: checks concurrency, then charges it.
    pub fn acquire(&mut self, client: &str) -> Result<(), u64> {
        let max = self.config.max_concurrent;
        let in_flight = self.clients.get(client).map_or(0, |b| b.in_flight);
        if in_flight >= max {
            return Err(1);
        }
        self.charge(client)?;
        self.clients
            .entry(client.to_string())
            .or_default()
            .in_flight += 1;
        Ok(())
    }

    /// Ends a request started with [`Throttle::acquire`].
    pub fn release(&mut self, client: &str) {
        if let Some(b) = self.clients.get_mut(client) {
            b.in_flight = b.in_flight.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_and_concurrency() {
        let mut t = Throttle::new(ThrottleConfig {
            requests_per_window: 2,
            window_secs: 60,
            max_concurrent: 1,
        });
        assert!(t.acquire("a").is_ok());
        assert_eq!(t.acquire("a"), Err(1));
        t.release("a");
        assert!(t.acquire("a").is_ok());
        t.release("a");
        let wait = t.acquire("a").expect_err("over budget");
        assert!((59..=60).contains(&wait));
        assert!(t.acquire("b").is_ok());
    }
}
