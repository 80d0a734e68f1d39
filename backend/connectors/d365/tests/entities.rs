//! Entities round-trip through JSON exactly and convert to and from the model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rust_decimal_macros::dec;
use syncline_core::model::*;
use syncline_d365::convert::*;
use syncline_d365::entities::*;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../core/tests/fixtures/d365/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn on_hand_page_parses_and_converts() {
    let page: ODataPage<WarehouseOnHandV2> =
        serde_json::from_str(&fixture("on_hand_page.json")).unwrap();
    let levels: Vec<InventoryLevel> = page.value.iter().map(on_hand_to_core).collect();
    assert_eq!(levels[1].available, dec!(3.75));
    assert_eq!(levels[1].location, "13");
}

#[test]
fn shipment_converts() {
    let v: serde_json::Value = serde_json::from_str(&fixture("shipment.json")).unwrap();
    let t: PackingSlipTrackingInformation = serde_json::from_value(v.clone()).unwrap();
    let lines: Vec<SalesOrderLine> = serde_json::from_value(v["Lines"].clone()).unwrap();
    let f = shipment_to_core("820982911946154508", &[t], &lines);
    assert_eq!(f.tracking.numbers, vec!["1z827wk74630"]);
    assert_eq!(f.lines[1].quantity, dec!(2));
}

#[test]
fn sales_order_serialises_decimals_as_numbers() {
    let usd = CurrencyCode::new("USD").unwrap();
    let order = Order {
        external_id: "1".into(),
        reference: "#1001".into(),
        currency: usd,
        customer: None,
        email: None,
        billing_address: None,
        shipping_address: None,
        lines: vec![OrderLine {
            external_id: None,
            line_number: 1,
            sku: Some("A".into()),
            title: "A".into(),
            quantity: dec!(2),
            unit_price: Money::new(dec!(19.99), usd),
            discounts: vec![],
            tax_lines: vec![],
            taxable: true,
            requires_shipping: true,
        }],
        shipping_total: Money::zero(usd),
        discount_total: Money::zero(usd),
        tax_total: Money::zero(usd),
        total: Money::new(dec!(39.98), usd),
        taxes_included: false,
        financial_status: FinancialStatus::Paid,
        note: None,
        note_attributes: vec![],
        tags: vec![],
        created_at: chrono::DateTime::parse_from_rfc3339("2021-12-31T19:00:00-05:00")
            .unwrap()
            .into(),
        updated_at: None,
        cancelled_at: None,
    };
    let (h, l) = sales_order_from_core(&order, "usmf", "C0001");
    let hj = serde_json::to_string(&h).unwrap();
    assert!(
        hj.contains(r##""CustomersOrderReference":"#1001""##)
            && hj.contains(r#""RequestedShippingDate":"2022-01-01T00:00:00Z""#),
        "{hj}"
    );
    let lj = serde_json::to_string(&l[0]).unwrap();
    assert!(
        lj.contains(r#""SalesPrice":19.99"#) && lj.contains(r#""dataAreaId":"usmf""#),
        "{lj}"
    );
    let back: SalesOrderLine = serde_json::from_str(&lj).unwrap();
    assert_eq!(back, l[0]);

    let p = Payment {
        external_id: "9".into(),
        order_external_id: None,
        kind: TransactionKind::Refund,
        gateway: Some("bogus".into()),
        status: None,
        amount: Money::new(dec!(10.00), usd),
        processed_at: None,
    };
    let j = payment_journal_line_from_core(&p, "usmf", "C0001");
    assert_eq!(j.debit_amount, Some(dec!(10.00)));
    assert_eq!(j.credit_amount, None);
}
