//! The typed payloads read every real fixture and convert to the canonical model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rust_decimal_macros::dec;
use syncline_core::model::{CurrencyCode, Customer, Fulfillment, InventoryLevel, Order};
use syncline_shopify::convert::{product_to_core, refund_to_core};
use syncline_shopify::payload::*;

fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let p = format!(
        "{}/../../core/tests/fixtures/shopify/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn order_converts() {
    let o: ShopifyOrder = fixture("shopify_webhook_orders_create_2026-07.json");
    assert_eq!(o.id, 820982911946154508);
    let c = Order::try_from(&o).unwrap();
    assert_eq!(c.reference, "#9999");
    assert_eq!(c.lines.len(), 5);
    assert_eq!(c.lines[0].sku.as_deref(), Some("SKU2006-001"));
    assert_eq!(c.lines[0].unit_price.amount, dec!(89.99));
    assert_eq!(c.total.amount, dec!(404.95));
    assert_eq!(c.shipping_total.amount, dec!(10.00));
    assert_eq!(c.tags, vec!["tag1", "tag2"]);
    assert_eq!(c.created_at.to_rfc3339(), "2022-01-01T00:00:00+00:00");
    assert_eq!(
        c.customer.unwrap().external_id.as_deref(),
        Some("115310627314723954")
    );
}

#[test]
fn other_payloads_convert() {
    let usd = CurrencyCode::new("USD").unwrap();
    let c: ShopifyCustomer = fixture("shopify_webhook_customers_create_2026-07.json");
    assert_eq!(
        Customer::try_from(&c).unwrap().email.as_deref(),
        Some("bob@biller.com")
    );
    let p: ShopifyProduct = fixture("shopify_webhook_products_update_2026-07.json");
    let p = product_to_core(&p, usd).unwrap();
    assert_eq!(p.variants.len(), 2);
    assert_eq!(p.tags, vec!["example", "mens", "t-shirt"]);
    let i: ShopifyInventoryLevel = fixture("shopify_webhook_inventory_levels_update_2026-07.json");
    assert_eq!(InventoryLevel::try_from(&i).unwrap().available, dec!(10));
    let f: ShopifyFulfillment =
        fixture("shopify_webhook_fulfillments_update_2026-07_abridged.json");
    let f = Fulfillment::try_from(&f).unwrap();
    assert_eq!(f.tracking.numbers, vec!["1z827wk74630"]);
    let r: ShopifyRefund = fixture("shopify_webhook_refunds_create_2026-07_abridged.json");
    let r = refund_to_core(&r, usd).unwrap();
    assert_eq!(r.lines[0].subtotal.amount, dec!(89.99));
    assert_eq!(r.refunded_total(usd).unwrap().amount, dec!(85.00));
}
