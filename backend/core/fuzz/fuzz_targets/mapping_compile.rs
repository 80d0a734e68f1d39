//! Tenant-authored mapping documents: compile must report, never crash; whatever
//! compiles must apply to a real order without crashing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syncline_core::mapping::{MappingDocument, apply_json, compile};
use syncline_core::templates::Flow;

const ORDER: &str = include_str!("../../tests/fixtures/shopify/shopify_webhook_orders_create_2026-07.json");

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<MappingDocument>(data) else { return };
    let (Ok(s), Ok(t)) = (Flow::Orders.source_schema(), Flow::Orders.target_schema()) else { return };
    if let Ok(m) = compile(&doc, &s, &t) {
        let _ = apply_json(&m, ORDER);
    }
});
