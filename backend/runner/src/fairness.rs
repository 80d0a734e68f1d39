//! Fair scheduling of in-process work between tenants.
//!
//! One FIFO queue per tenant, served round-robin (weighted turns optional): a tenant with a
//! backlog of 100,000 events gets one turn like everybody else, so another tenant's single
//! event waits for at most one turn of each other busy tenant, not for the whole backlog.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Per-tenant FIFO queues served round-robin; a tenant with weight `w` gets up to `w` items
/// per turn (default 1).
///
/// Every operation is O(1) amortised. Not thread-safe by itself: wrap it in a mutex next to a
/// notifier (the worker pool owns both).
#[derive(Debug)]
pub struct FairQueue<T, K = String> {
    queues: HashMap<K, VecDeque<T>>,
    /// Tenants with queued work, in turn order; the front one is being served.
    ring: VecDeque<K>,
    weights: HashMap<K, u32>,
    /// Items the front tenant has had in its current turn.
    served_in_turn: u32,
    len: usize,
}

impl<T, K> Default for FairQueue<T, K> {
    fn default() -> Self {
        FairQueue {
            queues: HashMap::new(),
            ring: VecDeque::new(),
            weights: HashMap::new(),
            served_in_turn: 0,
            len: 0,
        }
    }
}

impl<T, K: Eq + Hash + Clone> FairQueue<T, K> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how many items `tenant` gets per turn (e.g. by plan); 0 counts as 1 so that a
    /// tenant can never be starved by its own configuration.
    pub fn set_weight(&mut self, tenant: K, weight: u32) {
        self.weights.insert(tenant, weight.max(1));
    }

    /// Queues `item` at the back of `tenant`'s queue; a tenant new to the ring takes the
    /// last turn.
    pub fn push(&mut self, tenant: K, item: T) {
        match self.queues.get_mut(&tenant) {
            Some(queue) => queue.push_back(item),
            None => {
                self.ring.push_back(tenant.clone());
                self.queues.insert(tenant, VecDeque::from([item]));
            }
        }
        self.len += 1;
    }

    /// The next item in fair order, with its tenant.
    pub fn pop(&mut self) -> Option<(K, T)> {
        let tenant = self.ring.front()?.clone();
        let queue = self.queues.get_mut(&tenant)?;
        let item = queue.pop_front()?;
        self.len -= 1;
        self.served_in_turn += 1;
        if queue.is_empty() {
            // An idle tenant leaves the ring, so it costs nothing until it has work again.
            self.queues.remove(&tenant);
            self.ring.pop_front();
            self.served_in_turn = 0;
        } else if self.served_in_turn >= self.weight(&tenant) {
            self.ring.rotate_left(1);
            self.served_in_turn = 0;
        }
        Some((tenant, item))
    }

    /// Items queued across all tenants.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Items queued for one tenant.
    pub fn tenant_len(&self, tenant: &K) -> usize {
        self.queues.get(tenant).map_or(0, VecDeque::len)
    }

    /// Tenants with queued work.
    pub fn active_tenants(&self) -> usize {
        self.ring.len()
    }

    fn weight(&self, tenant: &K) -> u32 {
        self.weights.get(tenant).copied().unwrap_or(1)
    }
}
