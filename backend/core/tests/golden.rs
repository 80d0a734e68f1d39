//! Golden tests: every default template applied to the real public payloads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use syncline_core::mapping::{apply_json, apply_value, preview};
use syncline_core::templates::Flow;

/// JSON text snapshots: insta's own serializer does not understand serde_json's
/// arbitrary-precision numbers, text keeps decimals exactly as they go on the wire.
macro_rules! snap {
    ($v:expr) => {
        insta::assert_snapshot!(serde_json::to_string_pretty(&$v).unwrap())
    };
}

fn fixture(path: &str) -> String {
    let p = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn run(flow: Flow, json: &str) -> Value {
    let m = flow.compile_default().unwrap();
    let out = apply_json(&m, json).unwrap_or_else(|e| panic!("{flow:?}: {e}"));
    // The parsed-value path must agree with the projected-parse path.
    let v: Value = serde_json::from_str(json).unwrap();
    assert_eq!(apply_value(&m, &v).unwrap().to_value(), out.to_value());
    out.to_value()
}

#[test]
fn orders_to_sales_order() {
    let out = run(
        Flow::Orders,
        &fixture("shopify/shopify_webhook_orders_create_2026-07.json"),
    );
    snap!(out);
}

#[test]
fn customers_to_customers_v3() {
    let out = run(
        Flow::Customers,
        &fixture("shopify/shopify_webhook_customers_create_2026-07.json"),
    );
    snap!(out);
}

#[test]
fn refunds_to_credit_note() {
    let out = run(
        Flow::Refunds,
        &fixture("shopify/shopify_webhook_refunds_create_2026-07_abridged.json"),
    );
    snap!(out);
}

#[test]
fn transactions_to_payment_journal_lines() {
    let refund: Value = serde_json::from_str(&fixture(
        "shopify/shopify_webhook_refunds_create_2026-07_abridged.json",
    ))
    .unwrap();
    let outs: Vec<Value> = refund["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| run(Flow::Payments, &t.to_string()))
        .collect();
    snap!(outs);
}

#[test]
fn released_products_to_product_set() {
    let out = run(Flow::Products, &fixture("d365/released_product.json"));
    snap!(out);
}

#[test]
fn on_hand_to_inventory_quantities() {
    let out = run(Flow::Inventory, &fixture("d365/on_hand_page.json"));
    snap!(out);
}

#[test]
fn shipments_to_fulfillments() {
    let out = run(Flow::Fulfillments, &fixture("d365/shipment.json"));
    snap!(out);
}

#[test]
fn preview_traces_every_rule() {
    let m = Flow::Customers.compile_default().unwrap();
    let sample: Value = serde_json::from_str(&fixture(
        "shopify/shopify_webhook_customers_create_2026-07.json",
    ))
    .unwrap();
    let p = preview(&m, &sample);
    assert!(p.ok);
    snap!(p);
}

#[test]
fn preview_keeps_going_after_a_failing_rule() {
    let m = Flow::Orders.compile_default().unwrap();
    let mut sample: Value = serde_json::from_str(&fixture(
        "shopify/shopify_webhook_orders_create_2026-07.json",
    ))
    .unwrap();
    sample["financial_status"] = Value::from("something_new");
    sample["line_items"][1]["sku"] = Value::Null;
    let p = preview(&m, &sample);
    assert!(!p.ok);
    let errors: Vec<&str> = p.trace.iter().filter_map(|t| t.error.as_deref()).collect();
    snap!(errors);
    // apply stops at the first failure and names rule, field and value.
    let e = syncline_core::mapping::apply_value(&m, &sample)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("CustomerPaymentMethodName") && e.contains("something_new"),
        "{e}"
    );
}
