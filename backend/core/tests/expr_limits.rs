//! Pathological expressions are refused at compile time or stopped at run time,
//! and the process carries on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;
use syncline_core::mapping::{
    ApplyError, DEFAULT_LIMITS, ExprLimits, MappingDocument, apply_value, compile_expr,
    compile_with,
};
use syncline_core::templates::Flow;

#[test]
fn runaway_expression_is_stopped_by_the_time_limit() {
    let limits = ExprLimits {
        timeout: Duration::from_millis(30),
        ..DEFAULT_LIMITS
    };
    let doc: MappingDocument = serde_json::from_value(json!({
        "schema_version": 1, "flow": "orders",
        "rules": [
            {"target": "SalesOrderHeadersV2.OrderingCustomerAccountNumber", "source": {"const": "C1"}},
            {"target": "SalesOrderHeadersV2.CurrencyCode", "source": {"const": "USD"}},
            {"id": "slow", "target": "SalesOrderHeadersV2.SalesOrderName",
             "source": {"expr": "string(src.line_items.map(a, src.line_items.map(b, src.line_items.map(c, a.quantity + b.quantity + c.quantity))).size())"}}
        ]
    }))
    .unwrap();
    let m = compile_with(
        &doc,
        &Flow::Orders.source_schema().unwrap(),
        &Flow::Orders.target_schema().unwrap(),
        limits,
    )
    .unwrap();
    let items: Vec<_> = (0..300)
        .map(|i| json!({"sku": format!("S{i}"), "quantity": 1}))
        .collect();
    let started = std::time::Instant::now();
    let r = apply_value(&m, &json!({"line_items": items}));
    assert!(
        matches!(r, Err(ApplyError::Expr(ref e)) if e.contains("exceeded")),
        "{r:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // A small document still maps with the same compiled mapping.
    let ok = apply_value(&m, &json!({"line_items": [{"sku": "A", "quantity": 1}]})).unwrap();
    assert_eq!(ok.to_value()["SalesOrderHeadersV2"]["SalesOrderName"], "1");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn expression_compiler_never_panics(s in "[a-z0-9_.()\\[\\]{}+*/%!<>=&|?:,' \"-]{0,300}") {
        let _ = compile_expr(&s, &DEFAULT_LIMITS);
    }

    #[test]
    fn nesting_is_bounded_before_parsing(depth in 25usize..5000, open in prop_oneof![Just("("), Just("["), Just("{"), Just("!"), Just("-")]) {
        let s = format!("{}1", open.repeat(depth));
        prop_assert!(compile_expr(&s, &DEFAULT_LIMITS).is_err());
    }
}

#[test]
fn whole_objects_in_expressions_coexist_with_paths() {
    let doc: MappingDocument = serde_json::from_value(json!({
        "schema_version": 1, "flow": "orders",
        "rules": [
            {"target": "SalesOrderHeadersV2.OrderingCustomerAccountNumber", "source": {"const": "C1"}},
            {"target": "SalesOrderHeadersV2.CurrencyCode", "source": {"const": "USD"}},
            {"target": "SalesOrderHeadersV2.SalesOrderName", "source": {"expr": "string(size(src.line_items)) + ' lines, first ' + src.line_items[0].sku"}},
            {"target": "SalesOrderLines.ItemNumber", "source": {"path": "line_items[].sku"}},
            {"target": "SalesOrderLines.OrderedSalesQuantity", "source": {"path": "line_items[].quantity"}},
            {"target": "SalesOrderLines.LineDescription", "source": {"expr": "item.name + ' x' + string(item.quantity)"}}
        ]
    }))
    .unwrap();
    let m = syncline_core::mapping::compile(
        &doc,
        &Flow::Orders.source_schema().unwrap(),
        &Flow::Orders.target_schema().unwrap(),
    )
    .unwrap();
    let order = include_str!("fixtures/shopify/shopify_webhook_orders_create_2026-07.json");
    let out = syncline_core::mapping::apply_json(&m, order)
        .unwrap()
        .to_value();
    assert_eq!(
        out["SalesOrderHeadersV2"]["SalesOrderName"],
        "5 lines, first SKU2006-001"
    );
    assert_eq!(out["SalesOrderLines"][4]["ItemNumber"], "SKU2006-035");
    assert_eq!(
        out["SalesOrderLines"][0]["LineDescription"],
        "Aviator sunglasses x1"
    );
}
