//! Routing: an inbox event becomes one run per active pair whose flow handles its topic.
//!
//! [`plan_route`] decides; the webhook intake stores its decision with the event in one
//! transaction, and the sweeper applies it to events left `received` (released from a hold,
//! privacy requests). Both paths are idempotent: a run is unique per (pair, event, flow).

use std::borrow::Cow;

use serde::Deserialize;
use syncline_store::{
    InboxId, InboxStatus, IntakeRoutes, NewRun, PlannedRun, Run, RunId, Store, StoreError, TenantId,
};

use crate::{Dispatcher, Job};

/// The flow that handles a Shopify webhook topic, if any does yet.
pub fn flow_for_topic(topic: &str) -> Option<&'static str> {
    match topic {
        "orders/create" | "orders/updated" | "orders/cancelled" => Some("orders"),
        _ => None,
    }
}

/// The job that makes a worker process a run.
pub fn run_job(tenant: TenantId, run: RunId) -> Job {
    Job {
        kind: "run".to_owned(),
        id: run.to_string(),
        tenant: Some(tenant.to_string()),
    }
}

/// Routes an event stored as received but not routed yet (released from a hold, or a
/// privacy request): creates its runs, marks it routed and hands the
/// new runs to the dispatcher. Returns the runs (new or existing). Routing twice is harmless:
/// runs are unique per pair, event and flow, and only a newly created run is dispatched. A
/// dispatcher failure is not an error: the runs are in the database and the sweeper hands
/// them out later.
pub async fn route_event(
    store: &Store,
    dispatcher: &dyn Dispatcher,
    tenant: TenantId,
    inbox_id: InboxId,
) -> Result<Vec<Run>, StoreError> {
    let Some(event) = store.inbox_event(tenant, inbox_id).await? else {
        return Err(StoreError::NotFound);
    };
    if event.status != InboxStatus::Received {
        return Ok(Vec::new());
    }
    let routes = store.intake_routes(tenant, event.connection_id).await?;
    let plan = plan_route(&event.topic, &event.payload, &routes);
    let mut runs = Vec::new();
    for planned in plan.runs {
        let (run, created) = store
            .create_run(
                tenant,
                &NewRun {
                    pair_id: planned.pair_id,
                    inbox_id,
                    flow: planned.flow,
                    shopify_ref: planned.shopify_ref,
                    input_snapshot: None,
                },
            )
            .await?;
        if created && let Err(error) = dispatcher.enqueue(run_job(tenant, run.id)).await {
            tracing::warn!(%error, run_id = %run.id, "dispatching a new run failed; the sweeper will hand it out");
        }
        runs.push(run);
    }
    store
        .set_inbox_status(tenant, inbox_id, plan.status, plan.note.as_deref())
        .await?;
    Ok(runs)
}

/// The one field of an event's body that routing reads; the rest is skipped unparsed.
#[derive(Deserialize)]
struct EventName<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
}

/// What becomes of an event: its status and note, and the runs it routes to.
#[derive(Debug, Clone)]
pub struct RoutePlan {
    /// `done` when routed (or nothing handles it), `held` or `failed`.
    pub status: InboxStatus,
    /// Why it is held, failed or needs no run.
    pub note: Option<String>,
    /// The runs to create.
    pub runs: Vec<PlannedRun>,
}

/// Decides an event's fate from what the intake knows of its connection. Pure: the intake
/// stores the outcome with the event in one transaction, and the sweeper's path agrees.
pub fn plan_route(topic: &str, payload: &[u8], routes: &IntakeRoutes) -> RoutePlan {
    let decided = |status, note: String| RoutePlan {
        status,
        note: Some(note),
        runs: Vec::new(),
    };
    // Only the order's name is needed here; the worker parses the whole payload. Parsing
    // and redacting it here too cost a third of the intake process's time under load.
    // Parsing into this struct still checks the whole document.
    let shopify_ref = match serde_json::from_slice::<EventName<'_>>(payload) {
        Ok(named) => named.name.map(Cow::into_owned),
        Err(error) => return decided(InboxStatus::Failed, format!("malformed JSON: {error}")),
    };
    // Held before routing, a topic without a flow too: what happens is decided once the tenant
    // or pair resumes.
    if let Some(reason) = routes.hold_reason() {
        return decided(InboxStatus::Held, reason.to_owned());
    }
    let Some(flow) = flow_for_topic(topic) else {
        return decided(
            InboxStatus::Done,
            format!("no flow handles the topic {topic}"),
        );
    };
    let runs: Vec<PlannedRun> = routes
        .active_pairs
        .iter()
        .filter(|pair| pair.flows.iter().any(|f| f == flow))
        .map(|pair| PlannedRun {
            pair_id: pair.id,
            flow: flow.to_owned(),
            shopify_ref: shopify_ref.clone(),
        })
        .collect();
    if runs.is_empty() {
        return decided(
            InboxStatus::Done,
            format!("the {flow} flow is switched off on every active pair"),
        );
    }
    RoutePlan {
        status: InboxStatus::Done,
        note: None,
        runs,
    }
}

/// A run's redacted input: its event's payload with personal data masked, or the snapshot
/// stored with the run by versions that kept one.
pub async fn input_snapshot(
    store: &Store,
    run: &Run,
) -> Result<Option<serde_json::Value>, StoreError> {
    if let Some(snapshot) = &run.input_snapshot {
        return Ok(Some(snapshot.clone()));
    }
    let Some(event) = store.inbox_event(run.tenant_id, run.inbox_id).await? else {
        return Ok(None);
    };
    Ok(masked(&event.payload))
}

/// [`input_snapshot`] for a page of one tenant's runs: fills in each run's input snapshot,
/// reading the events in one query.
pub async fn fill_input_snapshots(
    store: &Store,
    tenant: TenantId,
    runs: &mut [Run],
) -> Result<(), StoreError> {
    let missing: Vec<InboxId> = runs
        .iter()
        .filter(|run| run.input_snapshot.is_none())
        .map(|run| run.inbox_id)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let payloads: std::collections::HashMap<InboxId, Vec<u8>> = store
        .inbox_payloads_of(tenant, &missing)
        .await?
        .into_iter()
        .collect();
    for run in runs.iter_mut().filter(|run| run.input_snapshot.is_none()) {
        run.input_snapshot = payloads.get(&run.inbox_id).and_then(|p| masked(p));
    }
    Ok(())
}

/// A payload as shown to people: parsed, with personal data masked; `None` when it is not
/// JSON.
fn masked(payload: &[u8]) -> Option<serde_json::Value> {
    serde_json::from_slice(payload)
        .ok()
        .map(|mut payload: serde_json::Value| {
            crate::flows::redact::mask_personal(&mut payload);
            payload
        })
}

#[cfg(test)]
mod tests {
    use syncline_store::{ActivePair, PairId};

    use super::*;

    fn routes(hold: Option<&'static str>, pairs: &[(PairId, &[&str])]) -> IntakeRoutes {
        IntakeRoutes {
            hold,
            active_pairs: pairs
                .iter()
                .map(|(id, flows)| ActivePair {
                    id: *id,
                    flows: flows.iter().map(|f| (*f).to_owned()).collect(),
                })
                .collect(),
        }
    }

    const ORDER: &[u8] = br##"{"id": 1, "name": "#1001", "line_items": []}"##;

    #[test]
    fn an_order_becomes_one_run_per_active_pair_with_the_orders_flow() {
        let (a, b, c) = (PairId::new(), PairId::new(), PairId::new());
        let plan = plan_route(
            "orders/create",
            ORDER,
            &routes(
                None,
                &[
                    (a, &["orders"]),
                    (b, &["customers"]),
                    (c, &["customers", "orders"]),
                ],
            ),
        );
        assert_eq!(plan.status, InboxStatus::Done);
        assert_eq!(plan.note, None);
        let pairs: Vec<PairId> = plan.runs.iter().map(|r| r.pair_id).collect();
        assert_eq!(pairs, vec![a, c]);
        assert!(
            plan.runs
                .iter()
                .all(|r| r.flow == "orders" && r.shopify_ref.as_deref() == Some("#1001"))
        );
    }

    #[test]
    fn held_failed_and_unhandled_events_make_no_run_and_say_why() {
        let pair = PairId::new();
        let active = routes(None, &[(pair, &["orders"])]);
        let held = plan_route(
            "orders/create",
            ORDER,
            &routes(Some("tenant suspended"), &[(pair, &["orders"])]),
        );
        assert_eq!(
            (held.status, held.note.as_deref()),
            (InboxStatus::Held, Some("tenant suspended"))
        );
        let no_pair = plan_route("orders/create", ORDER, &routes(None, &[]));
        assert_eq!(
            (no_pair.status, no_pair.note.as_deref()),
            (
                InboxStatus::Held,
                Some("no active pair for this connection")
            )
        );
        let malformed = plan_route("orders/create", b"{\"name\": ", &active);
        assert_eq!(malformed.status, InboxStatus::Failed);
        assert!(
            malformed
                .note
                .unwrap_or_default()
                .starts_with("malformed JSON")
        );
        // Malformed stays failed even while held: holding it would only delay the same verdict.
        let malformed_held = plan_route(
            "orders/create",
            b"[",
            &routes(Some("tenant suspended"), &[]),
        );
        assert_eq!(malformed_held.status, InboxStatus::Failed);
        let unhandled = plan_route("products/update", br#"{"id": 5}"#, &active);
        assert_eq!(
            (unhandled.status, unhandled.note.as_deref()),
            (
                InboxStatus::Done,
                Some("no flow handles the topic products/update")
            )
        );
        let switched_off = plan_route(
            "orders/create",
            ORDER,
            &routes(None, &[(pair, &["customers"])]),
        );
        assert_eq!(
            (switched_off.status, switched_off.note.as_deref()),
            (
                InboxStatus::Done,
                Some("the orders flow is switched off on every active pair")
            )
        );
        for plan in [held, no_pair, unhandled, switched_off, malformed_held] {
            assert!(plan.runs.is_empty());
        }
    }
}
