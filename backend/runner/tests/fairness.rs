//! The fair queue: one tenant's backlog never delays another tenant's single item.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::HashMap;

use proptest::prelude::*;
use syncline_runner::FairQueue;

#[test]
fn a_single_item_overtakes_a_backlog_of_100_000() {
    let mut queue = FairQueue::new();
    for i in 0..100_000u32 {
        queue.push("A".to_owned(), i);
    }
    queue.push("B".to_owned(), 0);
    assert_eq!(queue.len(), 100_001);
    let first_two: Vec<String> = (0..2).map(|_| queue.pop().unwrap().0).collect();
    assert!(first_two.contains(&"B".to_owned()), "{first_two:?}");
    assert_eq!(queue.len(), 99_999);
    assert_eq!(queue.active_tenants(), 1);
    // A's backlog still comes out whole and in order.
    let rest: Vec<u32> = std::iter::from_fn(|| queue.pop().map(|(_, item)| item)).collect();
    assert_eq!(rest, (1..100_000).collect::<Vec<_>>());
    assert!(queue.is_empty());
}

#[test]
fn three_tenants_are_served_round_robin() {
    let mut queue = FairQueue::new();
    for i in 0..3 {
        queue.push("a", i);
    }
    for i in 0..2 {
        queue.push("b", i);
    }
    queue.push("c", 0);
    let order: Vec<(&str, i32)> = std::iter::from_fn(|| queue.pop()).collect();
    assert_eq!(
        order,
        [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("b", 1), ("a", 2)]
    );
}

#[test]
fn a_tenant_returning_after_going_idle_takes_the_last_turn() {
    let mut queue = FairQueue::new();
    queue.push("a", 0);
    queue.push("b", 0);
    queue.push("b", 1);
    assert_eq!(queue.pop(), Some(("a", 0)));
    queue.push("a", 1);
    assert_eq!(queue.pop(), Some(("b", 0)));
    assert_eq!(queue.pop(), Some(("a", 1)));
    assert_eq!(queue.pop(), Some(("b", 1)));
    assert_eq!(queue.pop(), None);
}

#[test]
fn weights_give_bigger_turns() {
    let mut queue = FairQueue::new();
    queue.set_weight("gold", 3);
    queue.set_weight("zero", 0); // Counts as 1: never starved.
    for i in 0..6 {
        queue.push("gold", i);
        queue.push("free", i);
    }
    queue.push("zero", 0);
    let tenants: Vec<&str> = (0..9).map(|_| queue.pop().unwrap().0).collect();
    assert_eq!(
        tenants,
        [
            "gold", "gold", "gold", "free", "zero", "gold", "gold", "gold", "free"
        ]
    );
    assert_eq!(queue.tenant_len(&"free"), 4);
    assert_eq!(queue.tenant_len(&"zero"), 0);
}

proptest! {
    #[test]
    fn every_item_comes_out_once_in_per_tenant_order(
        ops in prop::collection::vec((0u8..5, any::<bool>()), 0..400),
        weights in prop::collection::vec(0u32..4, 5),
    ) {
        let mut queue = FairQueue::new();
        for (tenant, weight) in weights.iter().enumerate() {
            queue.set_weight(u8::try_from(tenant).unwrap(), *weight);
        }
        let mut pushed: HashMap<u8, Vec<u32>> = HashMap::new();
        let mut popped: HashMap<u8, Vec<u32>> = HashMap::new();
        // Interleave pushes and pops so tenants leave and rejoin the ring.
        for (next, (tenant, pop_too)) in (0u32..).zip(ops) {
            queue.push(tenant, next);
            pushed.entry(tenant).or_default().push(next);
            if pop_too {
                let (tenant, item) = queue.pop().unwrap();
                popped.entry(tenant).or_default().push(item);
            }
        }
        while let Some((tenant, item)) = queue.pop() {
            popped.entry(tenant).or_default().push(item);
        }
        prop_assert!(queue.is_empty());
        prop_assert_eq!(queue.active_tenants(), 0);
        // Equal per-tenant sequences: each item exactly once, FIFO within its tenant.
        prop_assert_eq!(pushed, popped);
    }
}
