//! Mutation inputs use the Admin API's field names and shapes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rust_decimal_macros::dec;
use syncline_core::model::*;
use syncline_shopify::convert::product_to_core;
use syncline_shopify::graphql::*;
use syncline_shopify::payload::ShopifyProduct;

/// Input fields per type, from the 2025-01 introspection schema in the fixtures.
const SCHEMA: &[(&str, &[&str])] = &[
    (
        "ProductSetInput",
        &[
            "descriptionHtml",
            "handle",
            "productType",
            "tags",
            "title",
            "vendor",
            "id",
            "metafields",
            "variants",
            "status",
            "productOptions",
        ],
    ),
    (
        "ProductVariantSetInput",
        &[
            "barcode",
            "compareAtPrice",
            "optionValues",
            "price",
            "sku",
            "taxable",
        ],
    ),
    ("VariantOptionValueInput", &["name", "optionName"]),
    ("OptionSetInput", &["name", "values"]),
    (
        "InventorySetQuantitiesInput",
        &[
            "reason",
            "name",
            "referenceDocumentUri",
            "quantities",
            "ignoreCompareQuantity",
        ],
    ),
    (
        "InventoryQuantityInput",
        &[
            "inventoryItemId",
            "locationId",
            "quantity",
            "compareQuantity",
        ],
    ),
    (
        "FulfillmentInput",
        &[
            "trackingInfo",
            "notifyCustomer",
            "lineItemsByFulfillmentOrder",
        ],
    ),
    (
        "FulfillmentTrackingInput",
        &["number", "url", "company", "numbers", "urls"],
    ),
    (
        "FulfillmentOrderLineItemsInput",
        &["fulfillmentOrderId", "fulfillmentOrderLineItems"],
    ),
];

fn keys_within(v: &serde_json::Value, ty: &str) {
    let allowed = SCHEMA.iter().find(|(n, _)| *n == ty).unwrap().1;
    for k in v.as_object().unwrap().keys() {
        assert!(allowed.contains(&k.as_str()), "{ty} has no field {k}");
    }
}

#[test]
fn product_set_input_matches_schema() {
    let p: ShopifyProduct = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../../core/tests/fixtures/shopify/shopify_webhook_products_update_2026-07.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let core = product_to_core(&p, CurrencyCode::new("USD").unwrap()).unwrap();
    let input = serde_json::to_value(product_set_input(&core, None)).unwrap();
    keys_within(&input, "ProductSetInput");
    keys_within(&input["variants"][0], "ProductVariantSetInput");
    keys_within(
        &input["variants"][0]["optionValues"][0],
        "VariantOptionValueInput",
    );
    keys_within(&input["productOptions"][0], "OptionSetInput");
    assert_eq!(input["variants"][1]["price"], "19.99");
    assert_eq!(
        input["productOptions"][0]["values"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn inventory_and_fulfillment_inputs_match_schema() {
    let levels: Vec<InventoryLevel> = (0..300)
        .map(|i| InventoryLevel {
            sku: Some(format!("S{i}")),
            inventory_item_id: None,
            location: "11".into(),
            available: dec!(3.75),
            on_hand: None,
            updated_at: None,
        })
        .collect();
    let (inputs, unresolved) = inventory_set_quantities(
        &levels,
        |l| {
            (l.sku.as_deref() != Some("S7")).then(|| {
                (
                    "gid://shopify/InventoryItem/1".into(),
                    "gid://shopify/Location/2".into(),
                )
            })
        },
        None,
    );
    assert_eq!(inputs.len(), 2);
    assert_eq!(inputs[0].quantities.len(), 250);
    assert_eq!(unresolved.len(), 1);
    let v = serde_json::to_value(&inputs[0]).unwrap();
    keys_within(&v, "InventorySetQuantitiesInput");
    keys_within(&v["quantities"][0], "InventoryQuantityInput");
    assert_eq!(v["quantities"][0]["quantity"], 3);

    let f = Fulfillment {
        external_id: None,
        order_external_id: "1".into(),
        status: None,
        tracking: Tracking {
            company: Some("UPS".into()),
            numbers: vec!["1z".into()],
            urls: vec![],
        },
        lines: vec![
            FulfillmentLine {
                line_external_id: None,
                sku: Some("A".into()),
                quantity: dec!(2),
            },
            FulfillmentLine {
                line_external_id: None,
                sku: Some("B".into()),
                quantity: dec!(1),
            },
        ],
        shipped_at: None,
    };
    let (input, missing) = fulfillment_input(
        &f,
        |sku| (sku == "A").then(|| ("fo1".into(), "fol1".into())),
        true,
    );
    assert_eq!(missing, vec!["B"]);
    let v = serde_json::to_value(&input).unwrap();
    keys_within(&v, "FulfillmentInput");
    keys_within(&v["trackingInfo"], "FulfillmentTrackingInput");
    keys_within(
        &v["lineItemsByFulfillmentOrder"][0],
        "FulfillmentOrderLineItemsInput",
    );
    assert_eq!(
        v["lineItemsByFulfillmentOrder"][0]["fulfillmentOrderLineItems"][0]["quantity"],
        2
    );
}
