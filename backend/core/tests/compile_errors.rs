//! Compile errors name the rule and the reason, all at once; hostile expressions are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use syncline_core::mapping::{MappingDocument, apply_value, compile};
use syncline_core::schema::{FieldDef, FieldType, MetafieldDef, Schema};
use syncline_core::templates::Flow;

fn doc(v: serde_json::Value) -> MappingDocument {
    serde_json::from_value(v).unwrap()
}

fn schemas() -> (Schema, Schema) {
    (
        Flow::Orders.source_schema().unwrap(),
        Flow::Orders.target_schema().unwrap(),
    )
}

#[test]
fn all_problems_are_reported_with_rule_and_reason() {
    let d = doc(json!({
        "schema_version": 1, "flow": "orders",
        "rules": [
            {"id": "ref", "target": "SalesOrderHeadersV2.CustomersOrderReference", "source": {"path": "nmae"}},
            {"id": "acct", "target": "SalesOrderHeadersV2.OrderingCustomerAccountNumber", "source": {"const": "C1"}},
            {"id": "cur", "target": "SalesOrderHeadersV2.CurrencyCode", "source": {"path": "total_price"}, "transforms": [{"op": "upper"}]},
            {"id": "pay", "target": "SalesOrderHeadersV2.CustomerPaymentMethodName", "source": {"path": "financial_status"}, "transforms": [{"op": "lookup", "table": "payment_statuses"}]},
            {"id": "mail", "target": "SalesOrderHeadersV2.Email", "source": {"expr": "lower(src.emial) + "}},
            {"id": "item", "target": "SalesOrderLines.ItemNumber", "source": {"path": "line_items[].sku"}},
            {"id": "qty", "target": "SalesOrderLines.OrderedSalesQuantity", "source": {"path": "line_items[].quantity"}},
            {"id": "nope", "target": "SalesOrderLines.NoSuchField", "source": {"const": 1}}
        ],
        "value_tables": {"payment_status": {"paid": "PREPAID"}}
    }));
    let (s, t) = schemas();
    let errs = compile(&d, &s, &t).unwrap_err();
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    insta::assert_snapshot!(text.join("\n"));
    let by = |id: &str| {
        errs.iter()
            .find(|e| e.rule == id)
            .unwrap_or_else(|| panic!("no error for {id}: {text:?}"))
    };
    assert!(
        by("ref").reason.contains("unknown field \"nmae\"")
            && by("ref").reason.contains("did you mean \"name\"")
    );
    assert_eq!(by("ref").path.as_deref(), Some("nmae"));
    assert!(
        by("cur").reason.contains("upper")
            && by("cur").reason.contains("expects text, got decimal")
    );
    assert!(
        by("pay")
            .reason
            .contains("unknown value table \"payment_statuses\"")
    );
    assert!(by("mail").reason.contains("syntax error"));
    assert!(by("nope").reason.contains("unknown target field"));
    assert_eq!(errs.len(), 5, "{text:?}");
}

#[test]
fn expression_errors_name_the_rule() {
    let (s, t) = schemas();
    let base = |expr: &str| {
        doc(json!({
            "schema_version": 1, "flow": "orders",
            "rules": [
                {"target": "SalesOrderHeadersV2.OrderingCustomerAccountNumber", "source": {"const": "C1"}},
                {"target": "SalesOrderHeadersV2.CurrencyCode", "source": {"const": "USD"}},
                {"id": "x", "target": "SalesOrderHeadersV2.Email", "source": {"expr": expr}}
            ]
        }))
    };
    for (expr, want) in [
        ("src.emial", "unknown field \"emial\""),
        ("src.email.matches('a+')", "not allowed"),
        ("item.sku", "does not iterate"),
        ("secret", "unknown variable"),
        (&format!("{}1{}", "(".repeat(200), ")".repeat(200)), "nests"),
        (&"'a' + ".repeat(2000), "bytes long"),
        (&format!("{}src.email", "!".repeat(300)), "nests"),
    ] {
        let errs = compile(&base(expr), &s, &t).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].rule, "x");
        assert!(
            errs[0].reason.contains(want),
            "{expr:.40}: {}",
            errs[0].reason
        );
    }
}

#[test]
fn wrong_document_version_is_refused() {
    let (s, t) = schemas();
    let mut d = Flow::Orders.default_template().unwrap();
    d.schema_version = 2;
    let e = compile(&d, &s, &t).unwrap_err();
    assert!(e[0].reason.contains("schema_version 2"));
}

#[test]
fn metafields_note_attributes_and_custom_fields_are_first_class() {
    let (mut s, mut t) = schemas();
    s.add_metafield(MetafieldDef {
        namespace: "custom".into(),
        key: "gift_note".into(),
        ty: FieldType::String,
    })
    .unwrap();
    t.add_custom_field(
        "SalesOrderHeadersV2",
        "ZZGiftNote",
        FieldDef {
            max_length: Some(10),
            ..FieldDef::of(FieldType::String)
        },
    )
    .unwrap();
    t.add_custom_field(
        "SalesOrderHeadersV2",
        "ZZChannel",
        FieldDef::of(FieldType::String),
    )
    .unwrap();
    let d = doc(json!({
        "schema_version": 1, "flow": "orders",
        "rules": [
            {"target": "SalesOrderHeadersV2.OrderingCustomerAccountNumber", "source": {"const": "C1"}},
            {"target": "SalesOrderHeadersV2.CurrencyCode", "source": {"const": "USD"}},
            {"target": "SalesOrderHeadersV2.ZZGiftNote", "source": {"metafield": "custom.gift_note"}, "transforms": [{"op": "truncate"}]},
            {"target": "SalesOrderHeadersV2.ZZChannel", "source": {"note_attribute": "channel"}, "transforms": [{"op": "default", "value": "web"}]}
        ]
    }));
    let m = compile(&d, &s, &t).unwrap();
    let out = apply_value(&m, &json!({
        "metafields": [{"namespace": "other", "key": "gift_note", "value": "no"}, {"namespace": "custom", "key": "gift_note", "value": "Happy birthday, Ann!"}],
        "note_attributes": [{"name": "channel", "value": "instagram"}]
    })).unwrap();
    assert_eq!(
        out.to_value()["SalesOrderHeadersV2"]["ZZGiftNote"],
        "Happy birt"
    );
    assert_eq!(
        out.to_value()["SalesOrderHeadersV2"]["ZZChannel"],
        "instagram"
    );

    // Undeclared metafields do not compile.
    let mut d2 = d.clone();
    d2.rules[2].source = syncline_core::mapping::Source::Metafield("custom.unknown".into());
    let e = compile(&d2, &s, &t).unwrap_err();
    assert!(e[0].reason.contains("not defined"));
}

#[test]
fn apply_errors_name_rule_field_and_value() {
    let (s, t) = schemas();
    let d = doc(json!({
        "schema_version": 1, "flow": "orders",
        "rules": [
            {"target": "SalesOrderHeadersV2.OrderingCustomerAccountNumber", "source": {"path": "email"}},
            {"target": "SalesOrderHeadersV2.CurrencyCode", "source": {"const": "USD"}}
        ]
    }));
    let m = compile(&d, &s, &t).unwrap();
    let e = apply_value(&m, &json!({"email": "a-very-long-address@example.com"}))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("OrderingCustomerAccountNumber")
            && e.contains("a-very-long-address@example.com")
            && e.contains("20 characters"),
        "{e}"
    );
}

#[test]
fn currency_conversion_uses_the_rate_table() {
    let (s, t) = schemas();
    let d = doc(json!({
        "schema_version": 1, "flow": "orders",
        "rules": [
            {"target": "SalesOrderHeadersV2.OrderingCustomerAccountNumber", "source": {"const": "C1"}},
            {"target": "SalesOrderHeadersV2.CurrencyCode", "source": {"const": "EUR"}},
            {"target": "SalesOrderHeadersV2.TotalDiscountAmount", "source": {"path": "total_discounts"},
             "transforms": [{"op": "convert_currency", "table": "to_eur", "from": {"path": "currency"}}, {"op": "round", "scale": 2}]}
        ],
        "rate_tables": {"to_eur": {"to": "EUR", "rates": {"USD": "0.9213"}}}
    }));
    let m = compile(&d, &s, &t).unwrap();
    let out = apply_value(&m, &json!({"total_discounts": "20.00", "currency": "USD"})).unwrap();
    assert_eq!(
        out.to_json(),
        r#"{"SalesOrderHeadersV2":{"OrderingCustomerAccountNumber":"C1","CurrencyCode":"EUR","TotalDiscountAmount":18.43}}"#
    );
    let e = apply_value(&m, &json!({"total_discounts": "20.00", "currency": "JPY"}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no rate for currency \"JPY\""), "{e}");
}

#[test]
fn order_lines_with_the_same_item_aggregate() {
    let m = Flow::Orders.compile_default().unwrap();
    let line = |sku: &str, qty: i64, price: &str, disc: &str| {
        json!({"sku": sku, "quantity": qty, "price": price, "name": sku, "taxable": true,
               "discount_allocations": [{"amount": disc}], "tax_lines": []})
    };
    let order = json!({
        "id": 1, "name": "#1", "currency": "USD", "created_at": "2024-05-01T10:00:00Z",
        "line_items": [line("A", 1, "5.00", "0.50"), line("B", 2, "3.00", "0"), line("A", 2, "5.00", "1.00"), line("A", 1, "4.00", "0")]
    });
    let out = apply_value(&m, &order).unwrap().to_value();
    let lines = out["SalesOrderLines"].as_array().unwrap();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["ItemNumber"], "A");
    assert_eq!(lines[0]["OrderedSalesQuantity"], json!(3));
    assert_eq!(lines[0]["LineDiscountAmount"].to_string(), "1.50");
    assert_eq!(lines[2]["SalesPrice"].to_string(), "4.00");
    assert_eq!(
        lines
            .iter()
            .map(|l| l["LineNumber"].clone())
            .collect::<Vec<_>>(),
        vec![json!(1), json!(2), json!(3)]
    );

    let (s, t) = schemas();
    let mut d = Flow::Orders.default_template().unwrap();
    d.aggregate
        .get_mut("SalesOrderLines")
        .unwrap()
        .sum
        .push("ItemNumber".into());
    d.aggregate
        .get_mut("SalesOrderLines")
        .unwrap()
        .by
        .push("Nope".into());
    let errs = compile(&d, &s, &t).unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.reason.contains("sum field ItemNumber is not numeric")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.reason.contains("by field Nope has no rule")),
        "{errs:?}"
    );
}
