//! Property tests: applying a compiled mapping never panics, whatever the JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::{Value, json};
use syncline_core::mapping::{apply_json, apply_value, preview};
use syncline_core::templates::Flow;

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[ -~]{0,12}".prop_map(Value::from),
        prop_oneof![
            Just("2021-12-31T19:00:00-05:00"),
            Just("12.50"),
            Just("USD"),
            Just("paid"),
            Just("")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        let keys = prop_oneof![
            Just("name".to_owned()),
            Just("email".to_owned()),
            Just("line_items".to_owned()),
            Just("sku".to_owned()),
            Just("price".to_owned()),
            Just("quantity".to_owned()),
            Just("shipping_address".to_owned()),
            Just("address1".to_owned()),
            Just("currency".to_owned()),
            Just("financial_status".to_owned()),
            Just("discount_allocations".to_owned()),
            Just("amount".to_owned()),
            Just("value".to_owned()),
            Just("Variants".to_owned()),
            Just("ItemNumber".to_owned()),
            Just("kind".to_owned()),
            Just("refund_line_items".to_owned()),
            Just("created_at".to_owned()),
            "[a-z_]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn applying_templates_never_panics(v in arb_json()) {
        for f in Flow::ALL {
            let m = f.compile_default().unwrap();
            let _ = apply_value(&m, &v);
            let _ = apply_json(&m, &v.to_string());
            let _ = preview(&m, &v);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        let m = Flow::Orders.compile_default().unwrap();
        let _ = apply_json(&m, &s);
    }
}

#[test]
fn deeply_nested_source_is_an_error_not_a_crash() {
    let m = Flow::Orders.compile_default().unwrap();
    let deep = format!(
        "{{\"line_items\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(apply_json(&m, &deep).is_err());
}
