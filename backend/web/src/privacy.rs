//! Shopify's mandatory privacy webhooks: `customers/redact` and `shop/redact` remove the
//! personal data Syncline stores for that customer or shop (stored webhook payloads);
//! `customers/data_request` is recorded for the merchant to act on.
//! (Topics and payloads: https://shopify.dev/docs/apps/build/privacy-law-compliance)

use serde_json::{Value, json};
use syncline_store::{Connection, InboxId};

use crate::accounts::audit;
use crate::{AppError, AppState};

/// The privacy topics Shopify sends to every public app.
pub const PRIVACY_TOPICS: &[&str] = &["customers/data_request", "customers/redact", "shop/redact"];

/// Whether a stored payload concerns the customer: it is one of the orders to redact (or
/// refers to one), it names the customer by id, or any value is their email address.
fn concerns(
    payload: &Value,
    customer_id: Option<u64>,
    email: Option<&str>,
    orders: &[u64],
) -> bool {
    let number = |key: &str| payload.get(key).and_then(Value::as_u64);
    let is_order = number("id").is_some_and(|id| orders.contains(&id))
        || number("order_id").is_some_and(|id| orders.contains(&id));
    let names_customer = customer_id.is_some()
        && (number("customer_id") == customer_id
            || payload
                .get("customer")
                .and_then(|c| c.get("id"))
                .and_then(Value::as_u64)
                == customer_id);
    is_order || names_customer || email.is_some_and(|email| mentions(payload, email))
}

fn mentions(value: &Value, email: &str) -> bool {
    match value {
        Value::String(text) => text.eq_ignore_ascii_case(email),
        Value::Array(items) => items.iter().any(|item| mentions(item, email)),
        Value::Object(map) => map.values().any(|item| mentions(item, email)),
        _ => false,
    }
}

/// Acts on a privacy webhook already stored as `event_id`.
pub async fn act(
    state: &AppState,
    connection: &Connection,
    topic: &str,
    event_id: InboxId,
    body: &Value,
) -> Result<(), AppError> {
    let tenant = connection.tenant_id;
    let shop = body
        .get("shop_domain")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match topic {
        "customers/data_request" => {
            let customer = body
                .get("customer")
                .and_then(|c| c.get("id"))
                .cloned()
                .unwrap_or(Value::Null);
            audit(
                &state.store,
                Some(tenant),
                "shopify",
                "privacy.data_request",
                json!({ "connection_id": connection.id, "shop": shop, "customer_id": customer }),
            )
            .await;
        }
        "customers/redact" => {
            let customer_id = body
                .get("customer")
                .and_then(|c| c.get("id"))
                .and_then(Value::as_u64);
            let email = body
                .get("customer")
                .and_then(|c| c.get("email"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let orders: Vec<u64> = body
                .get("orders_to_redact")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            let mut matching = Vec::new();
            for (id, payload) in state.store.inbox_payloads(tenant, connection.id).await? {
                let Ok(value) = serde_json::from_slice::<Value>(&payload) else {
                    continue;
                };
                if id == event_id || concerns(&value, customer_id, email.as_deref(), &orders) {
                    matching.push(id);
                }
            }
            let marker = json!({ "redacted": true, "reason": "customers/redact", "customer_id": customer_id }).to_string();
            let redacted = state
                .store
                .redact_inbox(tenant, &matching, marker.as_bytes())
                .await?;
            audit(&state.store, Some(tenant), "shopify", "privacy.customer_redacted", json!({ "connection_id": connection.id, "customer_id": customer_id, "events_redacted": redacted })).await;
        }
        "shop/redact" => {
            let ids: Vec<InboxId> = state
                .store
                .inbox_payloads(tenant, connection.id)
                .await?
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            let marker = json!({ "redacted": true, "reason": "shop/redact", "shop_domain": shop })
                .to_string();
            let redacted = state
                .store
                .redact_inbox(tenant, &ids, marker.as_bytes())
                .await?;
            audit(&state.store, Some(tenant), "shopify", "privacy.shop_redacted", json!({ "connection_id": connection.id, "shop": shop, "events_redacted": redacted })).await;
        }
        _ => {}
    }
    Ok(())
}
