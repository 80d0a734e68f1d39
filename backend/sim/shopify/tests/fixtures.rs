//! Contract tests against the published references: the HMAC test vectors
//! from the official libraries and the sample webhook payloads.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use serde_json::Value;
use syncline_sim_shopify::{model, webhooks};

#[test]
fn hmac_test_vectors_from_the_official_libraries() {
    assert_eq!(
        webhooks::sign(b"test_secret_key", br#"{"foo": "bar"}"#),
        "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="
    );
    assert_eq!(
        webhooks::sign(b"API_SECRET_KEY", b"{}"),
        "+ihUB5l+D7QrohDEi/6NcBcJRyKssyWqos13LmnsBbs="
    );
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "float",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Same keys, same JSON types, same values, recursively; reports the path.
fn same(a: &Value, b: &Value, path: &str) {
    assert_eq!(kind(a), kind(b), "JSON type differs at {path}: {a} vs {b}");
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let kx: Vec<_> = x.keys().collect();
            let ky: Vec<_> = y.keys().collect();
            let mut sx = kx.clone();
            let mut sy = ky.clone();
            sx.sort();
            sy.sort();
            assert_eq!(sx, sy, "keys differ at {path}");
            for (k, v) in x {
                same(v, &y[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "length differs at {path}");
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                same(p, q, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(a, b, "value differs at {path}"),
    }
}

fn fixture(name: &str) -> Value {
    let path = common::shared_dir()
        .join("fixtures/shopify/webhooks")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut v: Value = serde_json::from_str(&text).unwrap();
    // `_note` is the fixture author's annotation, not part of the payload.
    if let Some(o) = v.as_object_mut() {
        o.remove("_note");
    }
    v
}

fn roundtrip<T: serde::de::DeserializeOwned + serde::Serialize>(name: &str) -> Value {
    let original = fixture(name);
    // Parse from text, not from a Value, so number handling is the real one.
    let typed: T = serde_json::from_str(&original.to_string())
        .unwrap_or_else(|e| panic!("{name} does not deserialise: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    same(&original, &back, name);
    original
}

#[test]
fn every_fixture_roundtrips_through_the_model() {
    let dir = common::shared_dir().join("fixtures/shopify/webhooks");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        match name.as_str() {
            n if n.contains("orders_create") => {
                roundtrip::<model::Order>(n);
            }
            n if n.contains("customers_create") => {
                roundtrip::<model::Customer>(n);
            }
            n if n.contains("fulfillments_update") => {
                roundtrip::<model::Fulfillment>(n);
            }
            n if n.contains("inventory_levels_update") => {
                roundtrip::<model::InventoryLevel>(n);
            }
            n if n.contains("products_update") => {
                roundtrip::<model::Product>(n);
            }
            n if n.contains("refunds_create") => {
                roundtrip::<model::Refund>(n);
            }
            other => panic!("fixture {other} has no model: add one"),
        }
        seen += 1;
    }
    assert_eq!(seen, 6);
}

#[test]
fn large_ids_keep_their_precision() {
    let o: model::Order =
        serde_json::from_str(&fixture("shopify_webhook_orders_create_2026-07.json").to_string())
            .unwrap();
    assert_eq!(o.id, 820982911946154508);
    assert_eq!(o.line_items[0].id, 487817672276298554);
    assert!(o.id > (1u64 << 53));
    let text = serde_json::to_string(&o).unwrap();
    assert!(text.contains("\"id\":820982911946154508"));
}

#[test]
fn refund_line_subtotals_stay_numbers_and_money_stays_strings() {
    let v = roundtrip::<model::Refund>("shopify_webhook_refunds_create_2026-07_abridged.json");
    let line = &v["refund_line_items"][0];
    assert!(line["subtotal"].is_f64());
    assert!(line["subtotal_set"]["shop_money"]["amount"].is_string());
    assert!(v["transactions"][0]["amount"].is_string());
}

/// Shape-only comparison: same keys and JSON types where both sides are
/// non-null; arrays compare their first elements.
fn same_shape(fixture: &Value, generated: &Value, path: &str, optional: &[&str]) {
    match (fixture, generated) {
        (Value::Object(f), Value::Object(g)) => {
            for k in f.keys() {
                assert!(
                    g.contains_key(k) || optional.contains(&k.as_str()),
                    "generated payload lacks {path}.{k}"
                );
            }
            for k in g.keys() {
                assert!(
                    f.contains_key(k) || optional.contains(&k.as_str()),
                    "generated payload has extra {path}.{k}"
                );
            }
            for (k, fv) in f {
                if let Some(gv) = g.get(k) {
                    same_shape(fv, gv, &format!("{path}.{k}"), optional);
                }
            }
        }
        (Value::Array(f), Value::Array(g)) => {
            if let (Some(a), Some(b)) = (f.first(), g.first()) {
                same_shape(a, b, &format!("{path}[0]"), optional);
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        (f, g) => assert_eq!(kind(f), kind(g), "type differs at {path}: {f} vs {g}"),
    }
}

#[tokio::test]
async fn generated_payloads_have_the_fixture_shapes() {
    let emu = common::start().await;
    let shop = emu.default_shop().to_owned();
    let ids = emu.generate_orders(&shop, 40).unwrap();
    let orders = emu.orders(&shop).unwrap();
    let order_fixture = fixture("shopify_webhook_orders_create_2026-07.json");
    let mut guests = 0;
    let mut multi_currency = 0;
    for o in orders.iter().filter(|o| ids.contains(&o.id)) {
        let v = serde_json::to_value(o).unwrap();
        // `customer` is absent on guest checkouts, as on real ones.
        same_shape(&order_fixture, &v, "order", &["customer"]);
        if o.customer.is_none() {
            guests += 1;
        }
        if o.presentment_currency != o.currency {
            multi_currency += 1;
        }
        assert!(o.id > 1 << 53);
        assert!((1..=50).contains(&o.line_items.len()));
        // Totals add up in both currencies.
        let t = &o.total_price_set;
        let s = &o.subtotal_price_set;
        let sh = &o.total_shipping_price_set;
        let tx = &o.total_tax_set;
        assert_eq!(
            t.shop_money.amount,
            s.shop_money.amount + sh.shop_money.amount + tx.shop_money.amount
        );
        assert_eq!(
            t.presentment_money.amount,
            s.presentment_money.amount + sh.presentment_money.amount + tx.presentment_money.amount
        );
    }
    assert!(guests > 0, "expected some guest checkouts");
    assert!(multi_currency > 0, "expected some multi-currency orders");

    let refund_id = emu.generate_refund(&shop).unwrap().expect("a refund");
    let order = emu
        .orders(&shop)
        .unwrap()
        .into_iter()
        .find(|o| o.refunds.iter().any(|r| r.id == refund_id))
        .unwrap();
    let refund = serde_json::to_value(&order.refunds[0]).unwrap();
    same_shape(
        &fixture("shopify_webhook_refunds_create_2026-07_abridged.json"),
        &refund,
        "refund",
        &[],
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn traffic_is_deterministic_from_the_seed() {
    let a = common::start().await;
    let b = common::start().await;
    let sa = a.default_shop().to_owned();
    let ia = a.generate_orders(&sa, 5).unwrap();
    let ib = b.generate_orders(&sa, 5).unwrap();
    assert_eq!(ia, ib);
    let strip = |o: &model::Order| {
        let mut v = serde_json::to_value(o).unwrap();
        for k in ["created_at", "updated_at", "processed_at"] {
            v[k] = Value::Null;
        }
        v["line_items"] = v["line_items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["sku"].clone())
            .collect();
        v["customer"] = Value::Null;
        v
    };
    let oa: Vec<_> = a.orders(&sa).unwrap().iter().map(strip).collect();
    let ob: Vec<_> = b.orders(&sa).unwrap().iter().map(strip).collect();
    assert_eq!(oa, ob);
    a.shutdown().await;
    b.shutdown().await;
}
