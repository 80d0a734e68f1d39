//! Admin GraphQL mutation inputs the reverse flows send, built from the
//! canonical model. Field names follow the Admin API 2025-01 schema
//! (`fixtures/shopify/schema/`); `InventoryQuantityInput` also carries
//! `changeFromQuantity` for 2026-01 and later, where it replaces `compareQuantity`.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use syncline_core::model::{Fulfillment, InventoryLevel, Product};

/// `ProductStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ProductStatus {
    /// On sale.
    Active,
    /// Hidden, kept.
    Archived,
    /// Not yet published.
    Draft,
}

/// `VariantOptionValueInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantOptionValueInput {
    /// Option name, e.g. `Size`.
    pub option_name: String,
    /// Value, e.g. `Small`.
    pub name: String,
}

/// `OptionValueSetInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OptionValueSetInput {
    /// Value.
    pub name: String,
}

/// `OptionSetInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OptionSetInput {
    /// Option name.
    pub name: String,
    /// Values in order.
    pub values: Vec<OptionValueSetInput>,
}

/// `ProductVariantSetInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductVariantSetInput {
    /// SKU (the D365 item number).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// Price (GraphQL `Money` is a decimal string).
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_money")]
    pub price: Option<Decimal>,
    /// Compare-at price.
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_money")]
    pub compare_at_price: Option<Decimal>,
    /// Barcode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub barcode: Option<String>,
    /// Taxable.
    pub taxable: bool,
    /// Option values; required by the API.
    pub option_values: Vec<VariantOptionValueInput>,
}

mod opt_money {
    use rust_decimal::Decimal;
    use serde::Serializer;

    pub fn serialize<S: Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_str(&d.to_string()),
            None => s.serialize_none(),
        }
    }
}

/// `MetafieldInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetafieldInput {
    /// Namespace.
    pub namespace: String,
    /// Key.
    pub key: String,
    /// Value as text.
    pub value: String,
    /// Metafield type, e.g. `single_line_text_field`.
    #[serde(rename = "type")]
    pub ty: String,
}

/// `ProductSetInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductSetInput {
    /// Existing product, when updating.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Title.
    pub title: String,
    /// Handle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// HTML description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description_html: Option<String>,
    /// Vendor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Product type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_type: Option<String>,
    /// Status.
    pub status: ProductStatus,
    /// Tags.
    pub tags: Vec<String>,
    /// Options the variants use.
    pub product_options: Vec<OptionSetInput>,
    /// Variants.
    pub variants: Vec<ProductVariantSetInput>,
    /// Metafields (e.g. `d365.item_number`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metafields: Vec<MetafieldInput>,
}

/// The option name used when a variant has no explicit options.
const DEFAULT_OPTION: &str = "Title";

/// `productSet` input for a canonical product; `id` is the linked Shopify
/// product when updating.
pub fn product_set_input(p: &Product, id: Option<String>) -> ProductSetInput {
    // Shopify requires every variant to name a value for every product option.
    let variant_options = |v: &syncline_core::model::Variant| -> Vec<String> {
        if v.options.is_empty() {
            vec![
                v.title
                    .clone()
                    .or_else(|| v.sku.clone())
                    .unwrap_or_else(|| "Default".into()),
            ]
        } else {
            v.options.clone()
        }
    };
    let width = p
        .variants
        .iter()
        .map(|v| variant_options(v).len())
        .max()
        .unwrap_or(1);
    let names: Vec<String> = (0..width)
        .map(|i| {
            if width == 1 {
                DEFAULT_OPTION.to_owned()
            } else {
                format!("Option{}", i + 1)
            }
        })
        .collect();
    let mut values: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let variants = p
        .variants
        .iter()
        .map(|v| {
            let opts = variant_options(v);
            ProductVariantSetInput {
                sku: v.sku.clone(),
                price: v.price.map(|m| m.amount),
                compare_at_price: v.compare_at_price.map(|m| m.amount),
                barcode: v.barcode.clone(),
                taxable: v.taxable,
                option_values: names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        let val = opts.get(i).cloned().unwrap_or_else(|| "Default".into());
                        let seen = values.entry(i).or_default();
                        if !seen.contains(&val) {
                            seen.push(val.clone());
                        }
                        VariantOptionValueInput {
                            option_name: n.clone(),
                            name: val,
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    ProductSetInput {
        id,
        title: p.title.clone(),
        handle: p.handle.clone(),
        description_html: p.description_html.clone(),
        vendor: p.vendor.clone(),
        product_type: p.product_type.clone(),
        status: if p.active {
            ProductStatus::Active
        } else {
            ProductStatus::Draft
        },
        tags: p.tags.clone(),
        product_options: names
            .iter()
            .enumerate()
            .map(|(i, n)| OptionSetInput {
                name: n.clone(),
                values: values
                    .remove(&i)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|name| OptionValueSetInput { name })
                    .collect(),
            })
            .collect(),
        variants,
        metafields: Vec::new(),
    }
}

/// `InventoryQuantityInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryQuantityInput {
    /// `gid://shopify/InventoryItem/…`.
    pub inventory_item_id: String,
    /// `gid://shopify/Location/…`.
    pub location_id: String,
    /// New quantity.
    pub quantity: i64,
    /// Compare-and-set guard up to 2025-10.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare_quantity: Option<i64>,
}

/// `InventorySetQuantitiesInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InventorySetQuantitiesInput {
    /// `available` or `on_hand`.
    pub name: String,
    /// e.g. `correction`.
    pub reason: String,
    /// Where the change comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_document_uri: Option<String>,
    /// Set without compare-and-set (D365 is the source of truth).
    pub ignore_compare_quantity: bool,
    /// At most 250 per call.
    pub quantities: Vec<InventoryQuantityInput>,
}

/// Maximum quantities per `inventorySetQuantities` call.
pub const MAX_QUANTITIES: usize = 250;

/// Builds `inventorySetQuantities` inputs (chunks of 250) for on-hand levels.
/// `resolve` gives the inventory item and location ids of a level (from the
/// links table and the warehouse/location value table); unresolved levels are
/// returned separately so the flow can report them. Fractional stock is rounded
/// down: Shopify counts whole units.
pub fn inventory_set_quantities(
    levels: &[InventoryLevel],
    mut resolve: impl FnMut(&InventoryLevel) -> Option<(String, String)>,
    reference: Option<String>,
) -> (Vec<InventorySetQuantitiesInput>, Vec<InventoryLevel>) {
    let mut qs = Vec::new();
    let mut unresolved = Vec::new();
    for l in levels {
        match resolve(l) {
            Some((item, loc)) => qs.push(InventoryQuantityInput {
                inventory_item_id: item,
                location_id: loc,
                quantity: l.available.floor().to_i64().unwrap_or(0).max(0),
                compare_quantity: None,
            }),
            None => unresolved.push(l.clone()),
        }
    }
    let inputs = qs
        .chunks(MAX_QUANTITIES)
        .map(|c| InventorySetQuantitiesInput {
            name: "available".into(),
            reason: "correction".into(),
            reference_document_uri: reference.clone(),
            ignore_compare_quantity: true,
            quantities: c.to_vec(),
        })
        .collect();
    (inputs, unresolved)
}

/// `FulfillmentTrackingInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FulfillmentTrackingInput {
    /// Carrier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    /// Tracking numbers.
    pub numbers: Vec<String>,
    /// Tracking URLs.
    pub urls: Vec<String>,
}

/// `FulfillmentOrderLineItemInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FulfillmentOrderLineItemInput {
    /// Fulfillment order line id.
    pub id: String,
    /// Quantity.
    pub quantity: i64,
}

/// `FulfillmentOrderLineItemsInput`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FulfillmentOrderLineItemsInput {
    /// Fulfillment order.
    pub fulfillment_order_id: String,
    /// Its lines shipped.
    pub fulfillment_order_line_items: Vec<FulfillmentOrderLineItemInput>,
}

/// `FulfillmentInput` (for `fulfillmentCreate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FulfillmentInput {
    /// Lines by fulfillment order.
    pub line_items_by_fulfillment_order: Vec<FulfillmentOrderLineItemsInput>,
    /// Tracking.
    pub tracking_info: FulfillmentTrackingInput,
    /// Whether Shopify e-mails the buyer.
    pub notify_customer: bool,
}

/// Builds a `fulfillmentCreate` input. `locate` maps a shipped line's SKU to its
/// `(fulfillment order id, fulfillment order line id)` from the order's open
/// fulfillment orders; lines it cannot place are returned.
pub fn fulfillment_input(
    f: &Fulfillment,
    mut locate: impl FnMut(&str) -> Option<(String, String)>,
    notify_customer: bool,
) -> (FulfillmentInput, Vec<String>) {
    let mut by_order: BTreeMap<String, Vec<FulfillmentOrderLineItemInput>> = BTreeMap::new();
    let mut missing = Vec::new();
    for l in &f.lines {
        let sku = l.sku.clone().unwrap_or_default();
        match locate(&sku) {
            Some((fo, line)) => {
                by_order
                    .entry(fo)
                    .or_default()
                    .push(FulfillmentOrderLineItemInput {
                        id: line,
                        quantity: l.quantity.trunc().to_i64().unwrap_or(0),
                    })
            }
            None => missing.push(sku),
        }
    }
    (
        FulfillmentInput {
            line_items_by_fulfillment_order: by_order
                .into_iter()
                .map(|(k, v)| FulfillmentOrderLineItemsInput {
                    fulfillment_order_id: k,
                    fulfillment_order_line_items: v,
                })
                .collect(),
            tracking_info: FulfillmentTrackingInput {
                company: f.tracking.company.clone(),
                numbers: f.tracking.numbers.clone(),
                urls: f.tracking.urls.clone(),
            },
            notify_customer,
        },
        missing,
    )
}
