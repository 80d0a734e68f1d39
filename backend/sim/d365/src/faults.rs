//! Injected faults, applied before a request reaches the emulated service.

use serde::{Deserialize, Serialize};

/// What goes wrong.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Delay the response by `ms` milliseconds (then serve it normally).
    Latency {
        /// Delay in milliseconds.
        ms: u64,
    },
    /// Answer with this HTTP status (5xx bodies look like F&O's generic error).
    Status {
        /// HTTP status code.
        status: u16,
    },
    /// Drop the connection without a complete response.
    ConnectionReset,
    /// Answer 429 with `Retry-After`.
    Throttle {
        /// Seconds in `Retry-After`.
        retry_after: u64,
    },
}

/// Which endpoints a fault applies to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Every endpoint except the control plane.
    #[default]
    All,
    /// `/data/...` only.
    Odata,
    /// The Entra endpoints only.
    Token,
}

/// A fault with its scope and how many requests it hits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// The fault.
    pub fault: Fault,
    /// Endpoints it applies to.
    #[serde(default)]
    pub target: Target,
    /// Only requests whose path contains this text.
    #[serde(default)]
    pub path_contains: Option<String>,
    /// Number of requests to hit; `None` means until cleared.
    #[serde(default)]
    pub count: Option<u32>,
}

impl FaultRule {
    /// A rule hitting every request of `target` until cleared.
    pub fn always(fault: Fault, target: Target) -> FaultRule {
        FaultRule {
            fault,
            target,
            path_contains: None,
            count: None,
        }
    }

    /// A rule hitting the next `count` requests of `target`.
    pub fn times(fault: Fault, target: Target, count: u32) -> FaultRule {
        FaultRule {
            fault,
            target,
            path_contains: None,
            count: Some(count),
        }
    }

    pub(crate) fn applies(&self, path: &str) -> bool {
        let target_ok = match self.target {
            Target::All => true,
            Target::Odata => path.starts_with("/data"),
            Target::Token => !path.starts_with("/data"),
        };
        target_ok
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| path.contains(p))
    }
}

/// Takes the faults that hit this request, decrementing their counts.
pub fn take(rules: &mut Vec<FaultRule>, path: &str) -> Vec<Fault> {
    let mut hit = Vec::new();
    for r in rules.iter_mut() {
        if r.applies(path) && r.count != Some(0) {
            hit.push(r.fault.clone());
            if let Some(c) = r.count.as_mut() {
                *c -= 1;
            }
        }
    }
    rules.retain(|r| r.count != Some(0));
    hit
}
