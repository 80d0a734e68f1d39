//! Mutations: products, inventory, fulfillments, metafields, webhooks, bulk.

use async_graphql::types::MaybeUndefined;
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use rust_decimal::Decimal;

use super::scalars::{DateTime, Money, Url};
use super::types::*;
use super::{Gql, coded, gid, has_idempotent, parse_gid};
use crate::model;
use crate::shop;

/// Longest input list Shopify accepts for metafieldsSet.
pub const MAX_METAFIELDS: usize = 25;

fn now() -> String {
    crate::now_rfc3339()
}

/// `ProductCreateInput` (subset).
#[derive(InputObject)]
#[graphql(name = "ProductCreateInput")]
pub struct ProductCreateInput {
    title: Option<String>,
    handle: Option<String>,
    description_html: Option<String>,
    product_type: Option<String>,
    vendor: Option<String>,
    tags: Option<Vec<String>>,
    status: Option<ProductStatus>,
}

/// `ProductUpdateInput` (subset).
#[derive(InputObject)]
#[graphql(name = "ProductUpdateInput")]
pub struct ProductUpdateInput {
    id: Option<ID>,
    title: Option<String>,
    handle: Option<String>,
    description_html: Option<String>,
    product_type: Option<String>,
    vendor: Option<String>,
    tags: Option<Vec<String>>,
    status: Option<ProductStatus>,
}

/// `OptionValueSetInput`.
#[derive(InputObject)]
#[graphql(name = "OptionValueSetInput")]
pub struct OptionValueSetInput {
    id: Option<ID>,
    name: Option<String>,
}

/// `OptionSetInput` (subset).
#[derive(InputObject)]
#[graphql(name = "OptionSetInput")]
pub struct OptionSetInput {
    id: Option<ID>,
    name: Option<String>,
    position: Option<i32>,
    values: Option<Vec<OptionValueSetInput>>,
}

/// `VariantOptionValueInput` (subset).
#[derive(InputObject)]
#[graphql(name = "VariantOptionValueInput")]
pub struct VariantOptionValueInput {
    id: Option<ID>,
    name: Option<String>,
    option_id: Option<ID>,
    option_name: Option<String>,
}

/// `ProductSetInventoryInput`.
#[derive(InputObject)]
#[graphql(name = "ProductSetInventoryInput")]
pub struct ProductSetInventoryInput {
    location_id: ID,
    name: String,
    quantity: i32,
}

/// `ProductVariantSetInput` (subset).
#[derive(InputObject)]
#[graphql(name = "ProductVariantSetInput")]
pub struct ProductVariantSetInput {
    id: Option<ID>,
    barcode: Option<String>,
    compare_at_price: Option<Money>,
    inventory_policy: Option<ProductVariantInventoryPolicy>,
    inventory_quantities: Option<Vec<ProductSetInventoryInput>>,
    option_values: Vec<VariantOptionValueInput>,
    position: Option<i32>,
    price: Option<Money>,
    sku: Option<String>,
    taxable: Option<bool>,
    metafields: Option<Vec<MetafieldInput>>,
}

/// `ProductSetInput` (subset).
#[derive(InputObject)]
#[graphql(name = "ProductSetInput")]
pub struct ProductSetInput {
    id: Option<ID>,
    title: Option<String>,
    handle: Option<String>,
    description_html: Option<String>,
    product_type: Option<String>,
    vendor: Option<String>,
    tags: Option<Vec<String>>,
    status: Option<ProductStatus>,
    product_options: Option<Vec<OptionSetInput>>,
    variants: Option<Vec<ProductVariantSetInput>>,
    metafields: Option<Vec<MetafieldInput>>,
}

/// `MetafieldInput`.
#[derive(InputObject)]
#[graphql(name = "MetafieldInput")]
pub struct MetafieldInput {
    id: Option<ID>,
    namespace: Option<String>,
    key: Option<String>,
    value: Option<String>,
    #[graphql(name = "type")]
    kind: Option<String>,
}

/// `ProductCreatePayload`.
#[derive(SimpleObject)]
#[graphql(name = "ProductCreatePayload")]
pub struct ProductCreatePayload {
    product: Option<Product>,
    shop: ShopObj,
    user_errors: Vec<UserError>,
}

/// `ProductUpdatePayload`.
#[derive(SimpleObject)]
#[graphql(name = "ProductUpdatePayload")]
pub struct ProductUpdatePayload {
    product: Option<Product>,
    user_errors: Vec<UserError>,
}

/// `ProductSetUserErrorCode` (subset).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum ProductSetUserErrorCode {
    GenericError,
    InvalidMetafield,
    InvalidVariant,
    ProductDoesNotExist,
    ProductVariantDoesNotExist,
    InvalidInput,
    InvalidProduct,
    HandleNotUnique,
}

/// `ProductSetUserError`.
#[derive(SimpleObject)]
#[graphql(name = "ProductSetUserError")]
pub struct ProductSetUserError {
    code: Option<ProductSetUserErrorCode>,
    field: Option<Vec<String>>,
    message: String,
}

/// `ProductSetPayload`.
#[derive(SimpleObject)]
#[graphql(name = "ProductSetPayload")]
pub struct ProductSetPayload {
    product: Option<Product>,
    user_errors: Vec<ProductSetUserError>,
}

/// `InventoryQuantityInput`, with `changeFromQuantity` from API 2026-01.
#[derive(InputObject)]
#[graphql(name = "InventoryQuantityInput")]
pub struct InventoryQuantityInput {
    inventory_item_id: ID,
    location_id: ID,
    quantity: i32,
    compare_quantity: Option<i32>,
    change_from_quantity: MaybeUndefined<i32>,
}

/// `InventorySetQuantitiesInput`.
#[derive(InputObject)]
#[graphql(name = "InventorySetQuantitiesInput")]
pub struct InventorySetQuantitiesInput {
    reason: String,
    name: String,
    reference_document_uri: Option<String>,
    quantities: Vec<InventoryQuantityInput>,
    ignore_compare_quantity: Option<bool>,
}

/// `InventorySetQuantitiesUserErrorCode` (+ `CHANGE_FROM_QUANTITY_STALE`).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[allow(missing_docs)]
pub enum InventorySetQuantitiesUserErrorCode {
    InvalidInventoryItem,
    InvalidLocation,
    InvalidQuantityNegative,
    InvalidReason,
    InvalidReferenceDocument,
    ItemNotStockedAtLocation,
    InvalidQuantityTooHigh,
    InvalidQuantityTooLow,
    CompareQuantityRequired,
    CompareQuantityStale,
    ChangeFromQuantityStale,
    InvalidName,
    NoDuplicateInventoryItemIdGroupIdPair,
    NonMutableInventoryItem,
}

/// `InventorySetQuantitiesUserError`.
#[derive(SimpleObject)]
#[graphql(name = "InventorySetQuantitiesUserError")]
pub struct InventorySetQuantitiesUserError {
    code: Option<InventorySetQuantitiesUserErrorCode>,
    field: Option<Vec<String>>,
    message: String,
}

/// `InventoryChange`.
#[derive(Clone)]
pub struct InventoryChange {
    name: String,
    delta: i64,
    after: i64,
    item: u64,
    location: u64,
}

#[Object(name = "InventoryChange")]
impl InventoryChange {
    async fn name(&self) -> &str {
        &self.name
    }
    async fn delta(&self) -> i32 {
        self.delta as i32
    }
    async fn quantity_after_change(&self) -> Option<i32> {
        Some(self.after as i32)
    }
    async fn item(&self, ctx: &Context<'_>) -> Result<Option<InventoryItem>> {
        let g = ctx.data::<Gql>()?;
        Ok(g.shop
            .lock()
            .inventory_items
            .get(&self.item)
            .cloned()
            .map(InventoryItem))
    }
    async fn location(&self, ctx: &Context<'_>) -> Result<Option<Location>> {
        let g = ctx.data::<Gql>()?;
        Ok(g.shop
            .lock()
            .locations
            .get(&self.location)
            .cloned()
            .map(Location))
    }
}

/// `InventoryAdjustmentGroup`.
pub struct InventoryAdjustmentGroup {
    id: u64,
    reason: String,
    reference_document_uri: Option<String>,
    created_at: String,
    changes: Vec<InventoryChange>,
}

#[Object(name = "InventoryAdjustmentGroup")]
impl InventoryAdjustmentGroup {
    async fn id(&self) -> ID {
        gid("InventoryAdjustmentGroup", self.id)
    }
    async fn reason(&self) -> &str {
        &self.reason
    }
    async fn reference_document_uri(&self) -> Option<&str> {
        self.reference_document_uri.as_deref()
    }
    async fn created_at(&self) -> DateTime {
        DateTime::from_wire(&self.created_at)
    }
    async fn changes(
        &self,
        inventory_item_ids: Option<Vec<ID>>,
        location_ids: Option<Vec<ID>>,
        quantity_names: Option<Vec<String>>,
    ) -> Vec<InventoryChange> {
        self.changes
            .iter()
            .filter(|c| {
                inventory_item_ids.as_ref().is_none_or(|ids| {
                    ids.iter()
                        .any(|i| parse_gid(i, "InventoryItem") == Some(c.item))
                })
            })
            .filter(|c| {
                location_ids.as_ref().is_none_or(|ids| {
                    ids.iter()
                        .any(|i| parse_gid(i, "Location") == Some(c.location))
                })
            })
            .filter(|c| quantity_names.as_ref().is_none_or(|n| n.contains(&c.name)))
            .cloned()
            .collect()
    }
}

/// `InventorySetQuantitiesPayload`.
#[derive(SimpleObject)]
#[graphql(name = "InventorySetQuantitiesPayload")]
pub struct InventorySetQuantitiesPayload {
    inventory_adjustment_group: Option<InventoryAdjustmentGroup>,
    user_errors: Vec<InventorySetQuantitiesUserError>,
}

/// Reasons `inventorySetQuantities` accepts.
pub const REASONS: &[&str] = &[
    "correction",
    "cycle_count_available",
    "damaged",
    "movement_created",
    "movement_updated",
    "movement_received",
    "movement_canceled",
    "other",
    "promotion",
    "quality_control",
    "received",
    "reservation_created",
    "reservation_deleted",
    "reservation_updated",
    "restock",
    "safety_stock",
    "shrinkage",
];

/// `FulfillmentOrderLineItemInput`.
#[derive(InputObject)]
#[graphql(name = "FulfillmentOrderLineItemInput")]
pub struct FulfillmentOrderLineItemInput {
    id: ID,
    quantity: i32,
}

/// `FulfillmentOrderLineItemsInput`.
#[derive(InputObject)]
#[graphql(name = "FulfillmentOrderLineItemsInput")]
pub struct FulfillmentOrderLineItemsInput {
    fulfillment_order_id: ID,
    fulfillment_order_line_items: Option<Vec<FulfillmentOrderLineItemInput>>,
}

/// `FulfillmentTrackingInput`.
#[derive(InputObject)]
#[graphql(name = "FulfillmentTrackingInput")]
pub struct FulfillmentTrackingInput {
    number: Option<String>,
    url: Option<Url>,
    company: Option<String>,
    numbers: Option<Vec<String>>,
    urls: Option<Vec<Url>>,
}

/// `FulfillmentInput` (without `originAddress`).
#[derive(InputObject)]
#[graphql(name = "FulfillmentInput")]
pub struct FulfillmentInput {
    tracking_info: Option<FulfillmentTrackingInput>,
    notify_customer: Option<bool>,
    line_items_by_fulfillment_order: Vec<FulfillmentOrderLineItemsInput>,
}

/// `FulfillmentCreatePayload`.
#[derive(SimpleObject)]
#[graphql(name = "FulfillmentCreatePayload")]
pub struct FulfillmentCreatePayload {
    fulfillment: Option<Fulfillment>,
    user_errors: Vec<UserError>,
}

/// `MetafieldsSetInput`.
#[derive(InputObject)]
#[graphql(name = "MetafieldsSetInput")]
pub struct MetafieldsSetInput {
    owner_id: ID,
    namespace: Option<String>,
    key: String,
    value: String,
    compare_digest: Option<String>,
    #[graphql(name = "type")]
    kind: Option<String>,
}

/// `MetafieldsSetUserErrorCode` (subset).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum MetafieldsSetUserErrorCode {
    StaleObject,
    InvalidCompareDigest,
    InvalidType,
    InvalidValue,
    AppNotAuthorized,
    Inclusion,
    Taken,
    Present,
    Blank,
    TooLong,
    TooShort,
    LessThanOrEqualTo,
    InternalError,
}

/// `MetafieldsSetUserError`.
#[derive(SimpleObject)]
#[graphql(name = "MetafieldsSetUserError")]
pub struct MetafieldsSetUserError {
    code: Option<MetafieldsSetUserErrorCode>,
    element_index: Option<i32>,
    field: Option<Vec<String>>,
    message: String,
}

/// `MetafieldsSetPayload`.
#[derive(SimpleObject)]
#[graphql(name = "MetafieldsSetPayload")]
pub struct MetafieldsSetPayload {
    metafields: Option<Vec<Metafield>>,
    user_errors: Vec<MetafieldsSetUserError>,
}

/// `WebhookSubscriptionInput`.
#[derive(InputObject)]
#[graphql(name = "WebhookSubscriptionInput")]
pub struct WebhookSubscriptionInput {
    callback_url: Option<Url>,
    format: Option<WebhookSubscriptionFormat>,
    include_fields: Option<Vec<String>>,
    filter: Option<String>,
    metafield_namespaces: Option<Vec<String>>,
}

/// `WebhookSubscriptionCreatePayload`.
#[derive(SimpleObject)]
#[graphql(name = "WebhookSubscriptionCreatePayload")]
pub struct WebhookSubscriptionCreatePayload {
    user_errors: Vec<UserError>,
    webhook_subscription: Option<WebhookSubscription>,
}

/// `WebhookSubscriptionDeletePayload`.
#[derive(SimpleObject)]
#[graphql(name = "WebhookSubscriptionDeletePayload")]
pub struct WebhookSubscriptionDeletePayload {
    deleted_webhook_subscription_id: Option<ID>,
    user_errors: Vec<UserError>,
}

/// `BulkOperationUserErrorCode`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[allow(missing_docs)]
pub enum BulkOperationUserErrorCode {
    OperationInProgress,
    Invalid,
}

/// `BulkOperationUserError`.
#[derive(SimpleObject)]
#[graphql(name = "BulkOperationUserError")]
pub struct BulkOperationUserError {
    code: Option<BulkOperationUserErrorCode>,
    field: Option<Vec<String>>,
    message: String,
}

/// `BulkOperationRunQueryPayload`.
#[derive(SimpleObject)]
#[graphql(name = "BulkOperationRunQueryPayload")]
pub struct BulkOperationRunQueryPayload {
    bulk_operation: Option<BulkOperation>,
    user_errors: Vec<BulkOperationUserError>,
}

fn ue(field: &[&str], message: impl Into<String>) -> UserError {
    UserError {
        field: Some(field.iter().map(|s| (*s).to_owned()).collect()),
        message: message.into(),
    }
}

fn handleize(s: &str) -> String {
    let mut out = String::new();
    for c in s.to_lowercase().chars() {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

/// `Mutation`.
pub struct Mutation;

impl Mutation {
    async fn product_create_inner(
        &self,
        ctx: &Context<'_>,
        product: Option<ProductCreateInput>,
    ) -> Result<ProductCreatePayload> {
        let g = ctx.data::<Gql>()?;
        let Some(input) = product else {
            return Ok(ProductCreatePayload {
                product: None,
                shop: ShopObj,
                user_errors: vec![ue(&["product"], "Product input is required")],
            });
        };
        let Some(title) = input.title.filter(|t| !t.trim().is_empty()) else {
            return Ok(ProductCreatePayload {
                product: None,
                shop: ShopObj,
                user_errors: vec![ue(&["title"], "Title can't be blank")],
            });
        };
        let p = {
            let mut data = g.shop.lock();
            let handle = input.handle.unwrap_or_else(|| handleize(&title));
            if data.products.values().any(|p| p.handle == handle) {
                return Ok(ProductCreatePayload {
                    product: None,
                    shop: ShopObj,
                    user_errors: vec![ue(
                        &["handle"],
                        format!("Handle '{handle}' already in use. Please provide a new handle."),
                    )],
                });
            }
            let spec = crate::generator::ProductSpec {
                title,
                handle,
                body_html: input.description_html,
                vendor: input.vendor.unwrap_or_else(|| g.shop.name.clone()),
                product_type: input.product_type.unwrap_or_default(),
                tags: input.tags.unwrap_or_default().join(", "),
                status: input.status.unwrap_or(ProductStatus::Active).wire().into(),
                variants: vec![crate::generator::VariantSpec {
                    title: "Default Title".into(),
                    sku: None,
                    price: Decimal::ZERO,
                    compare_at_price: None,
                    barcode: None,
                    taxable: true,
                    inventory_policy: "deny".into(),
                    option1: Some("Default Title".into()),
                    quantities: Vec::new(),
                }],
            };
            crate::generator::insert_product(&mut data, spec)
        };
        crate::webhooks::emit_json(&g.emu, &g.shop, "products/create", &p);
        Ok(ProductCreatePayload {
            product: Some(Product(p)),
            shop: ShopObj,
            user_errors: vec![],
        })
    }

    async fn product_update_inner(
        &self,
        ctx: &Context<'_>,
        product: Option<ProductUpdateInput>,
    ) -> Result<ProductUpdatePayload> {
        let g = ctx.data::<Gql>()?;
        let Some(input) = product else {
            return Ok(ProductUpdatePayload {
                product: None,
                user_errors: vec![ue(&["product"], "Product input is required")],
            });
        };
        let id = input.id.as_deref().and_then(|i| parse_gid(i, "Product"));
        let updated = {
            let mut data = g.shop.lock();
            let Some(p) = id.and_then(|id| data.products.get_mut(&id)) else {
                return Ok(ProductUpdatePayload {
                    product: None,
                    user_errors: vec![ue(&["id"], "Product does not exist")],
                });
            };
            if let Some(t) = input.title {
                p.title = t;
            }
            if let Some(h) = input.handle {
                p.handle = h;
            }
            if let Some(d) = input.description_html {
                p.body_html = Some(d);
            }
            if let Some(t) = input.product_type {
                p.product_type = t;
            }
            if let Some(v) = input.vendor {
                p.vendor = v;
            }
            if let Some(t) = input.tags {
                p.tags = t.join(", ");
            }
            if let Some(s) = input.status {
                p.status = s.wire().into();
            }
            p.updated_at = Some(now());
            p.clone()
        };
        crate::webhooks::emit_json(&g.emu, &g.shop, "products/update", &updated);
        Ok(ProductUpdatePayload {
            product: Some(Product(updated)),
            user_errors: vec![],
        })
    }

    async fn product_set_inner(
        &self,
        ctx: &Context<'_>,
        input: ProductSetInput,
        synchronous: Option<bool>,
    ) -> Result<ProductSetPayload> {
        let _ = synchronous;
        let g = ctx.data::<Gql>()?;
        let err = |code, field: &[&str], msg: &str| ProductSetPayload {
            product: None,
            user_errors: vec![ProductSetUserError {
                code: Some(code),
                field: Some(field.iter().map(|s| (*s).to_owned()).collect()),
                message: msg.into(),
            }],
        };
        let variants_in = input.variants.unwrap_or_default();
        if variants_in.len() > 2048 {
            return Ok(err(
                ProductSetUserErrorCode::InvalidInput,
                &["input", "variants"],
                "Too many variants",
            ));
        }
        let existing_id = match &input.id {
            Some(id) => match parse_gid(id, "Product") {
                Some(pid) if g.shop.lock().products.contains_key(&pid) => Some(pid),
                _ => {
                    return Ok(err(
                        ProductSetUserErrorCode::ProductDoesNotExist,
                        &["input", "id"],
                        "Product does not exist",
                    ));
                }
            },
            None => None,
        };
        let all_metafields = input
            .metafields
            .iter()
            .flatten()
            .map(|m| (vec!["input".to_owned(), "metafields".to_owned()], m))
            .chain(variants_in.iter().enumerate().flat_map(|(i, v)| {
                v.metafields.iter().flatten().map(move |m| {
                    (
                        vec![
                            "input".to_owned(),
                            "variants".to_owned(),
                            i.to_string(),
                            "metafields".to_owned(),
                        ],
                        m,
                    )
                })
            }));
        for (path, m) in all_metafields {
            let problem = match (&m.key, &m.value, &m.kind) {
                (None, _, _) => Some("Key can't be blank".to_owned()),
                (_, None, _) => Some("Value can't be blank".to_owned()),
                (_, _, None) => Some("Type can't be blank".to_owned()),
                (Some(_), Some(v), Some(k)) => invalid_value(k, v),
            };
            if let Some(msg) = problem {
                let _ = &m.id;
                return Ok(ProductSetPayload {
                    product: None,
                    user_errors: vec![ProductSetUserError {
                        code: Some(ProductSetUserErrorCode::InvalidMetafield),
                        field: Some(path),
                        message: msg,
                    }],
                });
            }
        }
        let option_name = input
            .product_options
            .as_ref()
            .and_then(|o| o.first())
            .and_then(|o| o.name.clone())
            .unwrap_or_else(|| "Title".into());
        let _ = option_name;
        let mut data = g.shop.lock();
        let mut specs = Vec::new();
        for (i, v) in variants_in.iter().enumerate() {
            let id = match &v.id {
                Some(vid) => match parse_gid(vid, "ProductVariant") {
                    Some(x) if data.variant_product.get(&x) == existing_id.as_ref() => Some(x),
                    _ => {
                        return Ok(err(
                            ProductSetUserErrorCode::ProductVariantDoesNotExist,
                            &["input", "variants", &i.to_string(), "id"],
                            "Product variant does not exist",
                        ));
                    }
                },
                None => None,
            };
            let title = v
                .option_values
                .iter()
                .filter_map(|o| o.name.clone())
                .collect::<Vec<_>>()
                .join(" / ");
            let mut quantities = Vec::new();
            for q in v.inventory_quantities.iter().flatten() {
                let Some(loc) = parse_gid(&q.location_id, "Location")
                    .filter(|l| data.locations.contains_key(l))
                else {
                    return Ok(err(
                        ProductSetUserErrorCode::InvalidInput,
                        &["input", "variants", &i.to_string(), "inventoryQuantities"],
                        "Location does not exist",
                    ));
                };
                let _ = &q.name;
                quantities.push((loc, i64::from(q.quantity)));
            }
            let _ = (&v.position, id);
            specs.push((
                id,
                crate::generator::VariantSpec {
                    title: if title.is_empty() {
                        "Default Title".into()
                    } else {
                        title.clone()
                    },
                    sku: v.sku.clone(),
                    price: v.price.map_or(Decimal::ZERO, |m| m.0),
                    compare_at_price: v.compare_at_price.map(|m| m.0),
                    barcode: v.barcode.clone(),
                    taxable: v.taxable.unwrap_or(true),
                    inventory_policy: match v.inventory_policy {
                        Some(ProductVariantInventoryPolicy::Continue) => "continue".into(),
                        _ => "deny".into(),
                    },
                    option1: Some(if title.is_empty() {
                        "Default Title".into()
                    } else {
                        title
                    }),
                    quantities,
                },
            ));
        }
        let product = match existing_id {
            None => {
                let Some(title) = input.title.clone() else {
                    return Ok(err(
                        ProductSetUserErrorCode::InvalidProduct,
                        &["input", "title"],
                        "Title can't be blank",
                    ));
                };
                let handle = input.handle.clone().unwrap_or_else(|| handleize(&title));
                let spec = crate::generator::ProductSpec {
                    title,
                    handle,
                    body_html: input.description_html.clone(),
                    vendor: input.vendor.clone().unwrap_or_else(|| g.shop.name.clone()),
                    product_type: input.product_type.clone().unwrap_or_default(),
                    tags: input.tags.clone().unwrap_or_default().join(", "),
                    status: input.status.unwrap_or(ProductStatus::Active).wire().into(),
                    variants: specs.into_iter().map(|(_, s)| s).collect(),
                };
                crate::generator::insert_product(&mut data, spec)
            }
            Some(pid) => crate::generator::update_product(
                &mut data,
                pid,
                crate::generator::ProductPatch {
                    title: input.title.clone(),
                    handle: input.handle.clone(),
                    body_html: input.description_html.clone(),
                    vendor: input.vendor.clone(),
                    product_type: input.product_type.clone(),
                    tags: input.tags.as_ref().map(|t| t.join(", ")),
                    status: input.status.map(|s| s.wire().to_owned()),
                    variants: if variants_in.is_empty() {
                        None
                    } else {
                        Some(specs)
                    },
                },
            )
            .ok_or_else(|| async_graphql::Error::new("product vanished"))?,
        };
        let ts = now();
        for m in input.metafields.iter().flatten() {
            upsert_metafield(&mut data, &product.admin_graphql_api_id, m, &ts);
        }
        for (v_in, v) in variants_in.iter().zip(&product.variants) {
            for m in v_in.metafields.iter().flatten() {
                upsert_metafield(&mut data, &v.admin_graphql_api_id, m, &ts);
            }
        }
        drop(data);
        let topic = if existing_id.is_some() {
            "products/update"
        } else {
            "products/create"
        };
        crate::webhooks::emit_json(&g.emu, &g.shop, topic, &product);
        Ok(ProductSetPayload {
            product: Some(Product(product)),
            user_errors: vec![],
        })
    }

    async fn inventory_set_quantities_inner(
        &self,
        ctx: &Context<'_>,
        input: InventorySetQuantitiesInput,
    ) -> Result<InventorySetQuantitiesPayload> {
        use InventorySetQuantitiesUserErrorCode as C;
        let g = ctx.data::<Gql>()?;
        if g.version_at_least("2026-04") && !has_idempotent(ctx) {
            return Err(coded(
                "The @idempotent directive is required for this mutation.",
                "BAD_REQUEST",
            ));
        }
        let strict_change_from = g.version_at_least("2026-01");
        let mut errors = Vec::new();
        let mut push = |code: C, field: Vec<String>, msg: String| {
            errors.push(InventorySetQuantitiesUserError {
                code: Some(code),
                field: Some(field),
                message: msg,
            })
        };
        let f = |parts: &[&str]| parts.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        if input.name != "available" && input.name != "on_hand" {
            push(
                C::InvalidName,
                f(&["input", "name"]),
                "The quantity name must be either 'available' or 'on_hand'.".into(),
            );
        }
        if !REASONS.contains(&input.reason.as_str()) {
            push(
                C::InvalidReason,
                f(&["input", "reason"]),
                "The specified reason is invalid.".into(),
            );
        }
        if let Some(uri) = &input.reference_document_uri
            && url::Url::parse(uri).is_err()
        {
            push(
                C::InvalidReferenceDocument,
                f(&["input", "referenceDocumentUri"]),
                "The reference document URI is invalid.".into(),
            );
        }
        let mut data = g.shop.lock();
        let mut targets = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, q) in input.quantities.iter().enumerate() {
            let idx = i.to_string();
            let field = |leaf: &str| f(&["input", "quantities", &idx, leaf]);
            let item = parse_gid(&q.inventory_item_id, "InventoryItem")
                .filter(|id| data.inventory_items.contains_key(id));
            let loc =
                parse_gid(&q.location_id, "Location").filter(|id| data.locations.contains_key(id));
            let Some(item) = item else {
                push(
                    C::InvalidInventoryItem,
                    field("inventoryItemId"),
                    "The specified inventory item could not be found.".into(),
                );
                continue;
            };
            let Some(loc) = loc else {
                push(
                    C::InvalidLocation,
                    field("locationId"),
                    "The specified location could not be found.".into(),
                );
                continue;
            };
            if !seen.insert((item, loc)) {
                push(
                    C::NoDuplicateInventoryItemIdGroupIdPair,
                    field("inventoryItemId"),
                    "The combination of inventoryItemId and locationId must be unique.".into(),
                );
                continue;
            }
            let Some(level) = data.levels.get(&(item, loc)) else {
                push(
                    C::ItemNotStockedAtLocation,
                    field("locationId"),
                    "The specified inventory item is not stocked at the location.".into(),
                );
                continue;
            };
            if q.quantity > 1_000_000_000 {
                push(
                    C::InvalidQuantityTooHigh,
                    field("quantity"),
                    "The quantity can't be higher than 1,000,000,000.".into(),
                );
                continue;
            }
            if q.quantity < -1_000_000_000 {
                push(
                    C::InvalidQuantityTooLow,
                    field("quantity"),
                    "The quantity can't be lower than -1,000,000,000.".into(),
                );
                continue;
            }
            let current = level.get(&input.name);
            match &q.change_from_quantity {
                MaybeUndefined::Value(expected) => {
                    if i64::from(*expected) != current {
                        push(
                            C::ChangeFromQuantityStale,
                            field("changeFromQuantity"),
                            "The specified change from quantity is stale.".into(),
                        );
                        continue;
                    }
                }
                MaybeUndefined::Null => {}
                MaybeUndefined::Undefined if strict_change_from => {
                    drop(data);
                    return Err(coded(
                        format!(
                            "InventoryQuantityInput.changeFromQuantity is required (input.quantities.{i})"
                        ),
                        "INVALID_VARIABLE",
                    ));
                }
                MaybeUndefined::Undefined => {
                    if !input.ignore_compare_quantity.unwrap_or(false) {
                        match q.compare_quantity {
                            None => {
                                push(
                                    C::CompareQuantityRequired,
                                    field("compareQuantity"),
                                    "The compareQuantity argument must be given to each quantity or ignored using ignoreCompareQuantity.".into(),
                                );
                                continue;
                            }
                            Some(c) if i64::from(c) != current => {
                                push(
                                    C::CompareQuantityStale,
                                    field("compareQuantity"),
                                    "The compareQuantity value does not match the current quantity.".into(),
                                );
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                }
            }
            targets.push((item, loc, i64::from(q.quantity)));
        }
        if !errors.is_empty() {
            return Ok(InventorySetQuantitiesPayload {
                inventory_adjustment_group: None,
                user_errors: errors,
            });
        }
        let ts = now();
        let mut changes = Vec::new();
        let mut events = Vec::new();
        for (item, loc, qty) in targets {
            let Some(level) = data.levels.get_mut(&(item, loc)) else {
                continue;
            };
            let before = level.get(&input.name);
            let delta = qty - before;
            let other = if input.name == "available" {
                "on_hand"
            } else {
                "available"
            };
            let other_after = level.get(other) + delta;
            level.quantities.insert(input.name.clone(), qty);
            level.quantities.insert(other.to_owned(), other_after);
            level.updated_at = ts.clone();
            changes.push(InventoryChange {
                name: input.name.clone(),
                delta,
                after: qty,
                item,
                location: loc,
            });
            changes.push(InventoryChange {
                name: other.to_owned(),
                delta,
                after: other_after,
                item,
                location: loc,
            });
            events.push(model::InventoryLevel {
                inventory_item_id: item,
                location_id: loc,
                available: Some(level.get("available")),
                updated_at: ts.clone(),
                admin_graphql_api_id: level_gid(loc, item),
            });
        }
        let id = data.next_id();
        drop(data);
        for e in &events {
            crate::webhooks::emit_json(&g.emu, &g.shop, "inventory_levels/update", e);
        }
        Ok(InventorySetQuantitiesPayload {
            inventory_adjustment_group: Some(InventoryAdjustmentGroup {
                id,
                reason: input.reason,
                reference_document_uri: input.reference_document_uri,
                created_at: ts,
                changes,
            }),
            user_errors: vec![],
        })
    }

    async fn fulfillment_create_inner(
        &self,
        ctx: &Context<'_>,
        fulfillment: FulfillmentInput,
        message: Option<String>,
    ) -> Result<FulfillmentCreatePayload> {
        let _ = (message, fulfillment.notify_customer);
        let g = ctx.data::<Gql>()?;
        let fail = |field: &[&str], msg: &str| FulfillmentCreatePayload {
            fulfillment: None,
            user_errors: vec![ue(field, msg)],
        };
        if fulfillment.line_items_by_fulfillment_order.is_empty() {
            return Ok(fail(
                &["fulfillment", "lineItemsByFulfillmentOrder"],
                "Line items by fulfillment order can't be blank.",
            ));
        }
        let mut data = g.shop.lock();
        // Validate everything before touching state: the mutation is atomic.
        let mut plan: Vec<(u64, Vec<(u64, i64)>)> = Vec::new();
        let mut order_id = None;
        for (i, group) in fulfillment
            .line_items_by_fulfillment_order
            .iter()
            .enumerate()
        {
            let Some(fo) = parse_gid(&group.fulfillment_order_id, "FulfillmentOrder")
                .and_then(|id| data.fulfillment_orders.get(&id))
            else {
                return Ok(fail(
                    &[
                        "fulfillment",
                        "lineItemsByFulfillmentOrder",
                        &i.to_string(),
                        "fulfillmentOrderId",
                    ],
                    "Fulfillment order does not exist.",
                ));
            };
            if fo.status == "CLOSED" || fo.status == "CANCELLED" {
                return Ok(fail(
                    &["fulfillment"],
                    "Fulfillment order is not in a fulfillable state.",
                ));
            }
            if order_id.is_some_and(|o| o != fo.order_id) {
                return Ok(fail(
                    &["fulfillment"],
                    "All fulfillment orders must belong to the same order.",
                ));
            }
            order_id = Some(fo.order_id);
            let lines: Vec<(u64, i64)> = match &group.fulfillment_order_line_items {
                None => fo.lines.iter().map(|l| (l.id, l.remaining)).collect(),
                Some(items) => {
                    let mut v = Vec::new();
                    for it in items {
                        let Some(line) = parse_gid(&it.id, "FulfillmentOrderLineItem")
                            .and_then(|id| fo.lines.iter().find(|l| l.id == id))
                        else {
                            return Ok(fail(
                                &["fulfillment"],
                                "Invalid fulfillment order line item id.",
                            ));
                        };
                        if it.quantity <= 0 || i64::from(it.quantity) > line.remaining {
                            return Ok(fail(
                                &["fulfillment"],
                                "Invalid fulfillment order line item quantity requested.",
                            ));
                        }
                        v.push((line.id, i64::from(it.quantity)));
                    }
                    v
                }
            };
            plan.push((fo.id, lines));
        }
        let Some(order_id) = order_id else {
            return Ok(fail(&["fulfillment"], "Fulfillment order does not exist."));
        };
        let ts = now();
        let mut fulfilled_lines: Vec<(u64, i64)> = Vec::new();
        let mut location_id = None;
        for (fo_id, lines) in &plan {
            if let Some(fo) = data.fulfillment_orders.get_mut(fo_id) {
                location_id = Some(fo.location_id);
                for (line_id, qty) in lines {
                    if let Some(l) = fo.lines.iter_mut().find(|l| l.id == *line_id) {
                        l.remaining -= qty;
                        fulfilled_lines.push((l.line_item_id, *qty));
                    }
                }
                fo.status = if fo.lines.iter().all(|l| l.remaining == 0) {
                    "CLOSED".into()
                } else {
                    "IN_PROGRESS".into()
                };
                fo.updated_at = ts.clone();
            }
        }
        let fid = data.next_id();
        let tracking = fulfillment.tracking_info;
        let mut numbers: Vec<String> = Vec::new();
        let mut urls: Vec<String> = Vec::new();
        let mut company = None;
        if let Some(t) = tracking {
            numbers.extend(t.number);
            numbers.extend(t.numbers.unwrap_or_default());
            urls.extend(t.url.map(|u| u.0));
            urls.extend(t.urls.unwrap_or_default().into_iter().map(|u| u.0));
            company = t.company;
        }
        let Some(order) = data.orders.get_mut(&order_id) else {
            return Ok(fail(&["fulfillment"], "Order does not exist."));
        };
        let mut lines = Vec::new();
        for (li_id, qty) in &fulfilled_lines {
            if let Some(li) = order.line_items.iter_mut().find(|l| l.id == *li_id) {
                li.fulfillable_quantity = (li.fulfillable_quantity - qty).max(0);
                li.fulfillment_status = Some(if li.fulfillable_quantity == 0 {
                    "fulfilled".into()
                } else {
                    "partial".into()
                });
                let mut copy = li.clone();
                copy.quantity = *qty;
                copy.attributed_staffs = None;
                copy.current_quantity = None;
                copy.sales_line_item_group_id = None;
                lines.push(copy);
            }
        }
        let f = model::Fulfillment {
            id: fid,
            order_id,
            status: "success".into(),
            created_at: ts.clone(),
            service: Some("manual".into()),
            updated_at: ts.clone(),
            tracking_company: company,
            shipment_status: None,
            location_id,
            origin_address: None,
            email: order.email.clone(),
            destination: order.shipping_address.clone(),
            line_items: lines,
            tracking_number: numbers.first().cloned(),
            tracking_numbers: numbers,
            tracking_url: urls.first().cloned(),
            tracking_urls: urls,
            receipt: serde_json::json!({}),
            name: format!("{}.{}", order.name, order.fulfillments.len() + 1),
            admin_graphql_api_id: format!("gid://shopify/Fulfillment/{fid}"),
        };
        order.fulfillments.push(f.clone());
        order.fulfillment_status = if order.line_items.iter().all(|l| l.fulfillable_quantity == 0) {
            Some("fulfilled".into())
        } else {
            Some("partial".into())
        };
        order.updated_at = ts;
        let order_copy = order.clone();
        drop(data);
        crate::webhooks::emit_json(&g.emu, &g.shop, "fulfillments/create", &f);
        crate::webhooks::emit_json(&g.emu, &g.shop, "orders/updated", &order_copy);
        if order_copy.fulfillment_status.as_deref() == Some("fulfilled") {
            crate::webhooks::emit_json(&g.emu, &g.shop, "orders/fulfilled", &order_copy);
        }
        Ok(FulfillmentCreatePayload {
            fulfillment: Some(Fulfillment(f)),
            user_errors: vec![],
        })
    }

    async fn metafields_set_inner(
        &self,
        ctx: &Context<'_>,
        metafields: Vec<MetafieldsSetInput>,
    ) -> Result<MetafieldsSetPayload> {
        let g = ctx.data::<Gql>()?;
        if metafields.len() > MAX_METAFIELDS {
            return Err(coded(
                format!(
                    "The input array size of {} is greater than the maximum allowed of {MAX_METAFIELDS}.",
                    metafields.len()
                ),
                "MAX_INPUT_SIZE_EXCEEDED",
            ));
        }
        let mut data = g.shop.lock();
        let mut errors = Vec::new();
        for (i, m) in metafields.iter().enumerate() {
            let idx = i as i32;
            let err = |code, leaf: &str, msg: String| MetafieldsSetUserError {
                code: Some(code),
                element_index: Some(idx),
                field: Some(vec!["metafields".into(), i.to_string(), leaf.into()]),
                message: msg,
            };
            if !owner_exists(&data, &m.owner_id) {
                errors.push(err(
                    MetafieldsSetUserErrorCode::InvalidValue,
                    "ownerId",
                    "Owner subject does not exist.".into(),
                ));
                continue;
            }
            let ns = m.namespace.clone().unwrap_or_else(|| "$app".into());
            if ns.len() < 3 || ns.len() > 255 {
                errors.push(err(
                    MetafieldsSetUserErrorCode::TooShort,
                    "namespace",
                    "Namespace is too short (minimum is 3 characters)".into(),
                ));
                continue;
            }
            if m.key.len() < 2 || m.key.len() > 64 {
                errors.push(err(
                    MetafieldsSetUserErrorCode::TooShort,
                    "key",
                    "Key is too short (minimum is 2 characters)".into(),
                ));
                continue;
            }
            let existing = data
                .metafields
                .iter()
                .find(|x| x.owner_id == m.owner_id.0 && x.namespace == ns && x.key == m.key);
            if let (Some(d), Some(e)) = (&m.compare_digest, existing)
                && *d != digest(e)
            {
                errors.push(err(
                    MetafieldsSetUserErrorCode::StaleObject,
                    "compareDigest",
                    "The resource has been updated since it was loaded. Try again with an updated `compareDigest` value.".into(),
                ));
                continue;
            }
            let kind = m.kind.clone().or_else(|| existing.map(|e| e.kind.clone()));
            let Some(kind) = kind else {
                errors.push(err(
                    MetafieldsSetUserErrorCode::Blank,
                    "type",
                    "Type can't be blank".into(),
                ));
                continue;
            };
            if let Some(msg) = invalid_value(&kind, &m.value) {
                errors.push(err(MetafieldsSetUserErrorCode::InvalidValue, "value", msg));
            }
        }
        if !errors.is_empty() {
            return Ok(MetafieldsSetPayload {
                metafields: None,
                user_errors: errors,
            });
        }
        let ts = now();
        let mut out = Vec::new();
        for m in metafields {
            let ns = m.namespace.unwrap_or_else(|| "$app".into());
            let pos = data
                .metafields
                .iter()
                .position(|x| x.owner_id == m.owner_id.0 && x.namespace == ns && x.key == m.key);
            let rec = match pos {
                Some(p) => {
                    let rec = &mut data.metafields[p];
                    rec.value = m.value;
                    if let Some(k) = m.kind {
                        rec.kind = k;
                    }
                    rec.updated_at = ts.clone();
                    rec.clone()
                }
                None => {
                    let id = data.next_id();
                    let rec = shop::Metafield {
                        id,
                        owner_id: m.owner_id.0,
                        namespace: ns,
                        key: m.key,
                        kind: m.kind.unwrap_or_default(),
                        value: m.value,
                        created_at: ts.clone(),
                        updated_at: ts.clone(),
                    };
                    data.metafields.push(rec.clone());
                    rec
                }
            };
            out.push(Metafield(rec));
        }
        Ok(MetafieldsSetPayload {
            metafields: Some(out),
            user_errors: vec![],
        })
    }

    async fn webhook_subscription_create_inner(
        &self,
        ctx: &Context<'_>,
        topic: WebhookSubscriptionTopic,
        webhook_subscription: WebhookSubscriptionInput,
    ) -> Result<WebhookSubscriptionCreatePayload> {
        let g = ctx.data::<Gql>()?;
        let Some(url) = webhook_subscription.callback_url else {
            return Ok(WebhookSubscriptionCreatePayload {
                user_errors: vec![ue(
                    &["webhookSubscription", "callbackUrl"],
                    "Address can't be blank",
                )],
                webhook_subscription: None,
            });
        };
        let mut data = g.shop.lock();
        if data
            .faults
            .refuse_webhook_topics
            .iter()
            .any(|t| t == topic.name())
        {
            let rest = topic.name().to_ascii_lowercase().replacen('_', "/", 1);
            return Ok(WebhookSubscriptionCreatePayload {
                user_errors: vec![ue(
                    &["webhookSubscription"],
                    format!(
                        "You do not have permission to create or update webhooks with {rest} topic. This topic contains protected customer data."
                    ),
                )],
                webhook_subscription: None,
            });
        }
        if data
            .subscriptions
            .values()
            .any(|s| s.app == g.app && s.topic == topic.name() && s.callback_url == url.0)
        {
            return Ok(WebhookSubscriptionCreatePayload {
                user_errors: vec![ue(
                    &["webhookSubscription", "callbackUrl"],
                    "Address for this topic has already been taken",
                )],
                webhook_subscription: None,
            });
        }
        let id = data.next_id();
        let ts = now();
        let sub = shop::Subscription {
            id,
            topic: topic.name().into(),
            callback_url: url.0,
            format: match webhook_subscription.format {
                Some(WebhookSubscriptionFormat::XML) => "XML".into(),
                _ => "JSON".into(),
            },
            include_fields: webhook_subscription.include_fields.unwrap_or_default(),
            metafield_namespaces: webhook_subscription
                .metafield_namespaces
                .unwrap_or_default(),
            filter: webhook_subscription.filter,
            api_version: g.version.clone(),
            created_at: ts.clone(),
            updated_at: ts,
            consecutive_failures: 0,
            app: g.app.clone(),
        };
        data.subscriptions.insert(id, sub.clone());
        Ok(WebhookSubscriptionCreatePayload {
            user_errors: vec![],
            webhook_subscription: Some(WebhookSubscription(sub)),
        })
    }

    async fn webhook_subscription_delete_inner(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<WebhookSubscriptionDeletePayload> {
        let g = ctx.data::<Gql>()?;
        let removed = parse_gid(&id, "WebhookSubscription").and_then(|n| {
            let mut data = g.shop.lock();
            // Another app's subscription is invisible, as on Shopify.
            if data.subscriptions.get(&n).is_some_and(|s| s.app == g.app) {
                data.subscriptions.remove(&n)
            } else {
                None
            }
        });
        Ok(match removed {
            Some(_) => WebhookSubscriptionDeletePayload {
                deleted_webhook_subscription_id: Some(id),
                user_errors: vec![],
            },
            None => WebhookSubscriptionDeletePayload {
                deleted_webhook_subscription_id: None,
                user_errors: vec![ue(&["id"], "Webhook subscription does not exist")],
            },
        })
    }

    async fn bulk_operation_run_query_inner(
        &self,
        ctx: &Context<'_>,
        query: String,
    ) -> Result<BulkOperationRunQueryPayload> {
        let g = ctx.data::<Gql>()?;
        let fail = |code, msg: String| BulkOperationRunQueryPayload {
            bulk_operation: None,
            user_errors: vec![BulkOperationUserError {
                code: Some(code),
                field: Some(vec!["query".into()]),
                message: msg,
            }],
        };
        if let Err(e) = super::bulk::check_query(&query) {
            return Ok(fail(BulkOperationUserErrorCode::Invalid, e));
        }
        let op = {
            let mut data = g.shop.lock();
            if data
                .bulk_ops
                .values()
                .any(|b| b.status == "RUNNING" || b.status == "CREATED")
            {
                let running = data
                    .bulk_ops
                    .values()
                    .find(|b| b.status == "RUNNING" || b.status == "CREATED")
                    .map(|b| b.id)
                    .unwrap_or_default();
                drop(data);
                return Ok(fail(
                    BulkOperationUserErrorCode::OperationInProgress,
                    format!(
                        "A bulk query operation for this app and shop is already in progress: gid://shopify/BulkOperation/{running}."
                    ),
                ));
            }
            let id = data.next_id();
            let op = shop::BulkOp {
                id,
                status: "CREATED".into(),
                query: query.clone(),
                error_code: None,
                created_at: now(),
                completed_at: None,
                object_count: 0,
                root_object_count: 0,
                jsonl: String::new(),
            };
            data.bulk_ops.insert(id, op.clone());
            op
        };
        super::bulk::spawn(
            g.emu.clone(),
            g.shop.clone(),
            g.version.clone(),
            g.app.clone(),
            op.id,
        );
        Ok(BulkOperationRunQueryPayload {
            bulk_operation: Some(BulkOperation(op)),
            user_errors: vec![],
        })
    }
}

fn upsert_metafield(data: &mut shop::ShopData, owner: &str, m: &MetafieldInput, ts: &str) {
    let (Some(key), Some(value)) = (&m.key, &m.value) else {
        return;
    };
    let ns = m.namespace.clone().unwrap_or_else(|| "$app".into());
    match data
        .metafields
        .iter_mut()
        .find(|x| x.owner_id == owner && x.namespace == ns && x.key == *key)
    {
        Some(x) => {
            x.value = value.clone();
            if let Some(k) = &m.kind {
                x.kind = k.clone();
            }
            x.updated_at = ts.to_owned();
        }
        None => {
            let id = data.next_id();
            data.metafields.push(shop::Metafield {
                id,
                owner_id: owner.to_owned(),
                namespace: ns,
                key: key.clone(),
                kind: m.kind.clone().unwrap_or_default(),
                value: value.clone(),
                created_at: ts.to_owned(),
                updated_at: ts.to_owned(),
            });
        }
    }
}

fn owner_exists(data: &shop::ShopData, owner: &str) -> bool {
    let kinds: [(&str, &dyn Fn(u64) -> bool); 6] = [
        ("Product", &|id| data.products.contains_key(&id)),
        ("ProductVariant", &|id| {
            data.variant_product.contains_key(&id)
        }),
        ("Customer", &|id| data.customers.contains_key(&id)),
        ("Order", &|id| data.orders.contains_key(&id)),
        ("Location", &|id| data.locations.contains_key(&id)),
        ("Shop", &|_| true),
    ];
    kinds
        .iter()
        .any(|(k, f)| parse_gid(owner, k).is_some_and(f))
}

fn invalid_value(kind: &str, value: &str) -> Option<String> {
    let bad = match kind {
        "number_integer" => value.parse::<i64>().is_err(),
        "number_decimal" => value.parse::<Decimal>().is_err(),
        "boolean" => value != "true" && value != "false",
        "json" => serde_json::from_str::<serde_json::Value>(value).is_err(),
        "date" => chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_err(),
        "date_time" => chrono::DateTime::parse_from_rfc3339(value).is_err(),
        _ => false,
    };
    bad.then(|| format!("Value must be a valid {kind}."))
}

// Shopify declares every mutation payload nullable; the bodies above return
// plain payloads and these wrappers give the schema Shopify's types.
#[Object(name = "Mutation")]
impl Mutation {
    async fn product_create(
        &self,
        ctx: &Context<'_>,
        product: Option<ProductCreateInput>,
    ) -> Result<Option<ProductCreatePayload>> {
        self.product_create_inner(ctx, product).await.map(Some)
    }

    async fn product_update(
        &self,
        ctx: &Context<'_>,
        product: Option<ProductUpdateInput>,
    ) -> Result<Option<ProductUpdatePayload>> {
        self.product_update_inner(ctx, product).await.map(Some)
    }

    async fn product_set(
        &self,
        ctx: &Context<'_>,
        input: ProductSetInput,
        synchronous: Option<bool>,
    ) -> Result<Option<ProductSetPayload>> {
        self.product_set_inner(ctx, input, synchronous)
            .await
            .map(Some)
    }

    async fn inventory_set_quantities(
        &self,
        ctx: &Context<'_>,
        input: InventorySetQuantitiesInput,
    ) -> Result<Option<InventorySetQuantitiesPayload>> {
        self.inventory_set_quantities_inner(ctx, input)
            .await
            .map(Some)
    }

    async fn fulfillment_create(
        &self,
        ctx: &Context<'_>,
        fulfillment: FulfillmentInput,
        message: Option<String>,
    ) -> Result<Option<FulfillmentCreatePayload>> {
        self.fulfillment_create_inner(ctx, fulfillment, message)
            .await
            .map(Some)
    }

    async fn metafields_set(
        &self,
        ctx: &Context<'_>,
        metafields: Vec<MetafieldsSetInput>,
    ) -> Result<Option<MetafieldsSetPayload>> {
        self.metafields_set_inner(ctx, metafields).await.map(Some)
    }

    async fn webhook_subscription_create(
        &self,
        ctx: &Context<'_>,
        topic: WebhookSubscriptionTopic,
        webhook_subscription: WebhookSubscriptionInput,
    ) -> Result<Option<WebhookSubscriptionCreatePayload>> {
        self.webhook_subscription_create_inner(ctx, topic, webhook_subscription)
            .await
            .map(Some)
    }

    async fn webhook_subscription_delete(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<Option<WebhookSubscriptionDeletePayload>> {
        self.webhook_subscription_delete_inner(ctx, id)
            .await
            .map(Some)
    }

    async fn bulk_operation_run_query(
        &self,
        ctx: &Context<'_>,
        query: String,
    ) -> Result<Option<BulkOperationRunQueryPayload>> {
        self.bulk_operation_run_query_inner(ctx, query)
            .await
            .map(Some)
    }
}
