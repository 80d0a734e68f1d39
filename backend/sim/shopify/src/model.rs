//! Wire model of the Shopify webhook and REST payloads.
//!
//! The shapes follow the sample payloads published with the webhook
//! documentation (`fixtures/shopify/webhooks/`): money amounts are strings with
//! `*_set` twins, refund line subtotals are JSON numbers, and ids are 64-bit
//! integers that must never pass through a float.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Keeps a field that the payload sometimes omits and sometimes sends as
/// `null` apart: the outer `Option` is presence, the inner one nullability.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// An amount in one currency, as `{amount, currency_code}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Money {
    /// Decimal amount, serialised as a string.
    pub amount: Decimal,
    /// ISO 4217 code.
    pub currency_code: String,
}

/// The `*_set` twin of a money field: shop and presentment currencies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoneySet {
    /// Amount in the shop's currency.
    pub shop_money: Money,
    /// Amount in the currency the buyer saw.
    pub presentment_money: Money,
}

impl MoneySet {
    /// A set whose two sides are given.
    pub fn new(shop: Decimal, shop_cur: &str, pres: Decimal, pres_cur: &str) -> Self {
        Self {
            shop_money: Money {
                amount: shop,
                currency_code: shop_cur.to_owned(),
            },
            presentment_money: Money {
                amount: pres,
                currency_code: pres_cur.to_owned(),
            },
        }
    }
}

/// A money amount with a `currency` key, as found in `total_unsettled_set`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnsettledMoney {
    /// Decimal amount, serialised as a string.
    pub amount: Decimal,
    /// ISO 4217 code (`XXX` when none).
    pub currency: String,
}

/// `total_unsettled_set` of a transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnsettledSet {
    /// Presentment side.
    pub presentment_money: UnsettledMoney,
    /// Shop side.
    pub shop_money: UnsettledMoney,
}

/// A postal address as embedded in orders and fulfillments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    /// Given name.
    pub first_name: Option<String>,
    /// First street line.
    pub address1: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Postal code.
    pub zip: Option<String>,
    /// Province name.
    pub province: Option<String>,
    /// Country name.
    pub country: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Second street line.
    pub address2: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Latitude.
    pub latitude: Option<f64>,
    /// Longitude.
    pub longitude: Option<f64>,
    /// Full name.
    pub name: Option<String>,
    /// ISO 3166 alpha-2 code.
    pub country_code: Option<String>,
    /// Province code.
    pub province_code: Option<String>,
}

/// A customer's saved address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerAddress {
    /// Address id.
    pub id: u64,
    /// Owning customer.
    pub customer_id: u64,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// First street line.
    pub address1: Option<String>,
    /// Second street line.
    pub address2: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Province name.
    pub province: Option<String>,
    /// Country name.
    pub country: Option<String>,
    /// Postal code.
    pub zip: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Full name.
    pub name: Option<String>,
    /// Province code.
    pub province_code: Option<String>,
    /// ISO 3166 alpha-2 code.
    pub country_code: Option<String>,
    /// Country name as displayed.
    pub country_name: Option<String>,
    /// Whether this is the default address.
    pub default: bool,
}

/// A customer (`customers/create`, and embedded in orders without `addresses`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// Customer id.
    pub id: u64,
    /// Creation time (null inside some order payloads).
    pub created_at: Option<String>,
    /// Last update time.
    pub updated_at: Option<String>,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Account state (`disabled`, `enabled`, …).
    pub state: String,
    /// Merchant note.
    pub note: Option<String>,
    /// Whether the e-mail address was verified.
    pub verified_email: bool,
    /// Multipass identifier.
    pub multipass_identifier: Option<String>,
    /// Tax exemption flag.
    pub tax_exempt: bool,
    /// E-mail address.
    pub email: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Currency code.
    pub currency: String,
    /// Saved addresses; absent from the copy embedded in an order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<CustomerAddress>>,
    /// Tax exemptions.
    pub tax_exemptions: Vec<String>,
    /// GraphQL id.
    pub admin_graphql_api_id: String,
    /// Default address.
    pub default_address: Option<CustomerAddress>,
}

/// A tax line of an order, line item or shipping line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaxLine {
    /// Tax amount.
    pub price: Decimal,
    /// Rate as a fraction (JSON number).
    pub rate: f64,
    /// Tax name.
    pub title: String,
    /// Amount in both currencies.
    pub price_set: MoneySet,
    /// Whether the channel is liable.
    pub channel_liable: Option<bool>,
}

/// The share of one discount application carried by a line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscountAllocation {
    /// Allocated amount.
    pub amount: Decimal,
    /// Allocated amount in both currencies.
    pub amount_set: MoneySet,
    /// Index into the order's `discount_applications`.
    pub discount_application_index: u32,
}

/// A discount application of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscountApplication {
    /// `discount_code`, `manual`, `script` or `automatic`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Discount code (for `discount_code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Title (for non-code discounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Value as a decimal string.
    pub value: Decimal,
    /// `fixed_amount` or `percentage`.
    pub value_type: String,
    /// `line_item` or `shipping_line`.
    pub target_type: String,
    /// `all`, `entitled` or `explicit`.
    pub target_selection: String,
    /// `across` or `each` or `one`.
    pub allocation_method: String,
}

/// A discount code used on an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscountCode {
    /// The code.
    pub code: String,
    /// Amount as a decimal string.
    pub amount: Decimal,
    /// `fixed_amount`, `percentage` or `shipping`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// Staff attribution on a line item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributedStaff {
    /// Staff member GraphQL id (a string here).
    pub id: String,
    /// Quantity attributed.
    pub quantity: i64,
}

/// A custom property of a line item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Property {
    /// Property name.
    pub name: String,
    /// Property value.
    pub value: String,
}

/// A line item of an order, fulfillment or refund.
///
/// The copies embedded in fulfillments and refunds omit a few fields that the
/// order carries; those are kept apart from explicit nulls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineItem {
    /// Line item id.
    pub id: u64,
    /// GraphQL id.
    pub admin_graphql_api_id: String,
    /// Staff attributions (orders only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributed_staffs: Option<Vec<AttributedStaff>>,
    /// Quantity after removals (orders only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_quantity: Option<i64>,
    /// Quantity still to fulfil.
    pub fulfillable_quantity: i64,
    /// Fulfillment service handle.
    pub fulfillment_service: String,
    /// `fulfilled`, `partial` or null.
    pub fulfillment_status: Option<String>,
    /// Gift card flag.
    pub gift_card: bool,
    /// Weight in grams.
    pub grams: i64,
    /// Display name.
    pub name: String,
    /// Unit price.
    pub price: Decimal,
    /// Unit price in both currencies.
    pub price_set: MoneySet,
    /// Whether the product still exists.
    pub product_exists: bool,
    /// Product id, null for custom items.
    pub product_id: Option<u64>,
    /// Custom properties.
    pub properties: Vec<Property>,
    /// Ordered quantity.
    pub quantity: i64,
    /// Shipping flag.
    pub requires_shipping: bool,
    /// Bundle group id (orders only; may be null).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub sales_line_item_group_id: Option<Option<u64>>,
    /// SKU.
    pub sku: Option<String>,
    /// Taxable flag.
    pub taxable: bool,
    /// Product title.
    pub title: String,
    /// Total discount on the line.
    pub total_discount: Decimal,
    /// Total discount in both currencies.
    pub total_discount_set: MoneySet,
    /// Variant id, null for custom items.
    pub variant_id: Option<u64>,
    /// Inventory management of the variant.
    pub variant_inventory_management: Option<String>,
    /// Variant title.
    pub variant_title: Option<String>,
    /// Vendor.
    pub vendor: Option<String>,
    /// Taxes on the line.
    pub tax_lines: Vec<TaxLine>,
    /// Duties (opaque here).
    pub duties: Vec<Value>,
    /// Discount shares.
    pub discount_allocations: Vec<DiscountAllocation>,
}

/// A shipping line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShippingLine {
    /// Shipping line id.
    pub id: u64,
    /// Carrier identifier.
    pub carrier_identifier: Option<String>,
    /// Rate code.
    pub code: Option<String>,
    /// Current discounted price.
    pub current_discounted_price_set: MoneySet,
    /// Price after discounts.
    pub discounted_price: Decimal,
    /// Price after discounts in both currencies.
    pub discounted_price_set: MoneySet,
    /// Removed by an edit.
    pub is_removed: bool,
    /// Phone.
    pub phone: Option<String>,
    /// Price.
    pub price: Decimal,
    /// Price in both currencies.
    pub price_set: MoneySet,
    /// Requested fulfillment service.
    pub requested_fulfillment_service_id: Option<String>,
    /// Rate source.
    pub source: String,
    /// Rate title.
    pub title: String,
    /// Taxes on shipping.
    pub tax_lines: Vec<TaxLine>,
    /// Discount shares.
    pub discount_allocations: Vec<DiscountAllocation>,
}

/// A note attribute of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteAttribute {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// An order, as sent by `orders/create` and served by `orders.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Order id.
    pub id: u64,
    /// GraphQL id.
    pub admin_graphql_api_id: String,
    /// Creating app.
    pub app_id: Option<u64>,
    /// Buyer IP.
    pub browser_ip: Option<String>,
    /// Marketing consent.
    pub buyer_accepts_marketing: bool,
    /// Cancellation reason.
    pub cancel_reason: Option<String>,
    /// Cancellation time.
    pub cancelled_at: Option<String>,
    /// Cart token.
    pub cart_token: Option<String>,
    /// Checkout token.
    pub checkout_token: Option<String>,
    /// Client details (opaque).
    pub client_details: Option<Value>,
    /// Closing time.
    pub closed_at: Option<String>,
    /// Confirmation number.
    pub confirmation_number: Option<String>,
    /// Confirmed flag.
    pub confirmed: bool,
    /// Contact e-mail.
    pub contact_email: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// Shop currency.
    pub currency: String,
    /// Current shipping price.
    pub current_shipping_price_set: MoneySet,
    /// Current subtotal.
    pub current_subtotal_price: Decimal,
    /// Current subtotal in both currencies.
    pub current_subtotal_price_set: MoneySet,
    /// Current additional fees.
    pub current_total_additional_fees_set: Option<MoneySet>,
    /// Current discounts.
    pub current_total_discounts: Decimal,
    /// Current discounts in both currencies.
    pub current_total_discounts_set: MoneySet,
    /// Current duties.
    pub current_total_duties_set: Option<MoneySet>,
    /// Current total.
    pub current_total_price: Decimal,
    /// Current total in both currencies.
    pub current_total_price_set: MoneySet,
    /// Current tax.
    pub current_total_tax: Decimal,
    /// Current tax in both currencies.
    pub current_total_tax_set: MoneySet,
    /// Buyer locale.
    pub customer_locale: Option<String>,
    /// POS device.
    pub device_id: Option<u64>,
    /// Discount codes.
    pub discount_codes: Vec<DiscountCode>,
    /// Duties included in prices.
    pub duties_included: bool,
    /// E-mail.
    pub email: Option<String>,
    /// Estimated taxes.
    pub estimated_taxes: bool,
    /// Financial status.
    pub financial_status: Option<String>,
    /// Fulfillment status.
    pub fulfillment_status: Option<String>,
    /// Landing site.
    pub landing_site: Option<String>,
    /// Landing site ref.
    pub landing_site_ref: Option<String>,
    /// POS location.
    pub location_id: Option<u64>,
    /// Merchant business entity.
    pub merchant_business_entity_id: Option<String>,
    /// Merchant of record app.
    pub merchant_of_record_app_id: Option<u64>,
    /// Order name (`#1001`).
    pub name: String,
    /// Note.
    pub note: Option<String>,
    /// Note attributes.
    pub note_attributes: Vec<NoteAttribute>,
    /// Shop-scoped number.
    pub number: u64,
    /// Order number.
    pub order_number: u64,
    /// Status page URL.
    pub order_status_url: Option<String>,
    /// Original additional fees.
    pub original_total_additional_fees_set: Option<MoneySet>,
    /// Original duties.
    pub original_total_duties_set: Option<MoneySet>,
    /// Payment gateways.
    pub payment_gateway_names: Vec<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Purchase order number.
    pub po_number: Option<String>,
    /// Presentment currency.
    pub presentment_currency: String,
    /// Processing time.
    pub processed_at: String,
    /// Reference.
    pub reference: Option<String>,
    /// Referring site.
    pub referring_site: Option<String>,
    /// Source identifier.
    pub source_identifier: Option<String>,
    /// Source name.
    pub source_name: String,
    /// Source URL.
    pub source_url: Option<String>,
    /// Subtotal.
    pub subtotal_price: Decimal,
    /// Subtotal in both currencies.
    pub subtotal_price_set: MoneySet,
    /// Tags, comma-and-space separated.
    pub tags: String,
    /// Tax exempt.
    pub tax_exempt: bool,
    /// Order-level taxes.
    pub tax_lines: Vec<TaxLine>,
    /// Prices include taxes.
    pub taxes_included: bool,
    /// Test order.
    pub test: bool,
    /// Token.
    pub token: String,
    /// Cash rounding on payment.
    pub total_cash_rounding_payment_adjustment_set: MoneySet,
    /// Cash rounding on refund.
    pub total_cash_rounding_refund_adjustment_set: MoneySet,
    /// Discounts.
    pub total_discounts: Decimal,
    /// Discounts in both currencies.
    pub total_discounts_set: MoneySet,
    /// Sum of line prices.
    pub total_line_items_price: Decimal,
    /// Sum of line prices in both currencies.
    pub total_line_items_price_set: MoneySet,
    /// Outstanding amount.
    pub total_outstanding: Decimal,
    /// Total.
    pub total_price: Decimal,
    /// Total in both currencies.
    pub total_price_set: MoneySet,
    /// Shipping in both currencies.
    pub total_shipping_price_set: MoneySet,
    /// Tax.
    pub total_tax: Decimal,
    /// Tax in both currencies.
    pub total_tax_set: MoneySet,
    /// Tips.
    pub total_tip_received: Decimal,
    /// Weight in grams.
    pub total_weight: i64,
    /// Update time.
    pub updated_at: String,
    /// Staff user.
    pub user_id: Option<u64>,
    /// Billing address.
    pub billing_address: Option<Address>,
    /// Customer; absent for guest checkouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
    /// Discount applications.
    pub discount_applications: Vec<DiscountApplication>,
    /// Fulfillments.
    pub fulfillments: Vec<Fulfillment>,
    /// Line items.
    pub line_items: Vec<LineItem>,
    /// Payment terms (opaque).
    pub payment_terms: Option<Value>,
    /// Refunds.
    pub refunds: Vec<Refund>,
    /// Shipping address.
    pub shipping_address: Option<Address>,
    /// Shipping lines.
    pub shipping_lines: Vec<ShippingLine>,
    /// Returns (opaque).
    pub returns: Vec<Value>,
    /// Line item groups (opaque).
    pub line_item_groups: Vec<Value>,
}

/// A fulfillment (`fulfillments/create`, `fulfillments/update`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fulfillment {
    /// Fulfillment id.
    pub id: u64,
    /// Order id.
    pub order_id: u64,
    /// `pending`, `open`, `success`, …
    pub status: String,
    /// Creation time.
    pub created_at: String,
    /// Service.
    pub service: Option<String>,
    /// Update time.
    pub updated_at: String,
    /// Carrier.
    pub tracking_company: Option<String>,
    /// Shipment status.
    pub shipment_status: Option<String>,
    /// Location.
    pub location_id: Option<u64>,
    /// Origin address (opaque).
    pub origin_address: Option<Value>,
    /// E-mail.
    pub email: Option<String>,
    /// Destination.
    pub destination: Option<Address>,
    /// Fulfilled lines.
    pub line_items: Vec<LineItem>,
    /// Tracking number.
    pub tracking_number: Option<String>,
    /// Tracking numbers.
    pub tracking_numbers: Vec<String>,
    /// Tracking URL.
    pub tracking_url: Option<String>,
    /// Tracking URLs.
    pub tracking_urls: Vec<String>,
    /// Receipt (opaque).
    pub receipt: Value,
    /// Name (`#1001.1`).
    pub name: String,
    /// GraphQL id.
    pub admin_graphql_api_id: String,
}

/// A refunded line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundLineItem {
    /// Refund line id.
    pub id: u64,
    /// Quantity refunded.
    pub quantity: i64,
    /// Refunded line item.
    pub line_item_id: u64,
    /// Restock location.
    pub location_id: Option<u64>,
    /// `no_restock`, `cancel`, `return`.
    pub restock_type: String,
    /// Subtotal — a JSON number in this payload, unlike other money.
    #[serde(with = "rust_decimal::serde::float")]
    pub subtotal: Decimal,
    /// Tax — a JSON number in this payload.
    #[serde(with = "rust_decimal::serde::float")]
    pub total_tax: Decimal,
    /// Subtotal in both currencies.
    pub subtotal_set: MoneySet,
    /// Tax in both currencies.
    pub total_tax_set: MoneySet,
    /// The refunded line item.
    pub line_item: LineItem,
}

/// An order transaction (`orders/{id}/transactions.json`, inside refunds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// Transaction id.
    pub id: u64,
    /// Order id.
    pub order_id: u64,
    /// `sale`, `capture`, `authorization`, `refund`, `void`.
    pub kind: String,
    /// Gateway.
    pub gateway: String,
    /// `success`, `failure`, `pending`, `error`.
    pub status: String,
    /// Gateway message.
    pub message: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// Test flag.
    pub test: bool,
    /// Authorization code.
    pub authorization: Option<String>,
    /// Location.
    pub location_id: Option<u64>,
    /// Staff user.
    pub user_id: Option<u64>,
    /// Parent transaction.
    pub parent_id: Option<u64>,
    /// Processing time.
    pub processed_at: Option<String>,
    /// Device.
    pub device_id: Option<u64>,
    /// Error code.
    pub error_code: Option<String>,
    /// Source.
    pub source_name: String,
    /// Receipt (opaque).
    pub receipt: Value,
    /// Amount as a decimal string.
    pub amount: Decimal,
    /// Currency.
    pub currency: Option<String>,
    /// Payment id.
    pub payment_id: String,
    /// Unsettled amount.
    pub total_unsettled_set: UnsettledSet,
    /// Manual gateway flag.
    pub manual_payment_gateway: bool,
    /// Rounding.
    pub amount_rounding: Option<Decimal>,
    /// GraphQL id.
    pub admin_graphql_api_id: String,
}

/// A refund (`refunds/create`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    /// Refund id.
    pub id: u64,
    /// Order id.
    pub order_id: u64,
    /// Creation time.
    pub created_at: String,
    /// Note.
    pub note: Option<String>,
    /// Staff user.
    pub user_id: Option<u64>,
    /// Processing time.
    pub processed_at: String,
    /// Duties (opaque).
    pub duties: Vec<Value>,
    /// Refunded duties.
    pub total_duties_set: MoneySet,
    /// Return (opaque).
    #[serde(rename = "return")]
    pub return_: Option<Value>,
    /// Refunded shipping (opaque).
    pub refund_shipping_lines: Vec<Value>,
    /// Restock flag.
    pub restock: bool,
    /// GraphQL id.
    pub admin_graphql_api_id: String,
    /// Order adjustments (opaque).
    pub order_adjustments: Vec<Value>,
    /// Refunded lines.
    pub refund_line_items: Vec<RefundLineItem>,
    /// Refund transactions.
    pub transactions: Vec<Transaction>,
}

/// A product variant inside a product payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// GraphQL id.
    pub admin_graphql_api_id: String,
    /// Barcode.
    pub barcode: Option<String>,
    /// Compare-at price.
    pub compare_at_price: Option<Decimal>,
    /// Creation time.
    pub created_at: Option<String>,
    /// Variant id.
    pub id: u64,
    /// `deny` or `continue`.
    pub inventory_policy: String,
    /// Position, from 1.
    pub position: i64,
    /// Price.
    pub price: Decimal,
    /// Product id.
    pub product_id: u64,
    /// SKU.
    pub sku: Option<String>,
    /// Taxable flag.
    pub taxable: bool,
    /// Title.
    pub title: String,
    /// Update time.
    pub updated_at: Option<String>,
    /// First option value.
    pub option1: Option<String>,
    /// Second option value.
    pub option2: Option<String>,
    /// Third option value.
    pub option3: Option<String>,
    /// Image.
    pub image_id: Option<u64>,
    /// Inventory item.
    pub inventory_item_id: Option<u64>,
    /// Total available quantity.
    pub inventory_quantity: i64,
    /// Previous quantity.
    pub old_inventory_quantity: i64,
}

/// A variant reference in `variant_gids`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantGid {
    /// GraphQL id.
    pub admin_graphql_api_id: String,
    /// Update time.
    pub updated_at: String,
}

/// A product (`products/create`, `products/update`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// GraphQL id.
    pub admin_graphql_api_id: String,
    /// Description.
    pub body_html: Option<String>,
    /// Creation time.
    pub created_at: Option<String>,
    /// Handle.
    pub handle: String,
    /// Product id.
    pub id: u64,
    /// Product type.
    pub product_type: String,
    /// Publication time.
    pub published_at: Option<String>,
    /// Template suffix.
    pub template_suffix: Option<String>,
    /// Title.
    pub title: String,
    /// Update time.
    pub updated_at: Option<String>,
    /// Vendor.
    pub vendor: String,
    /// `active`, `archived`, `draft`.
    pub status: String,
    /// Published scope.
    pub published_scope: String,
    /// Tags, comma-and-space separated.
    pub tags: String,
    /// Variants.
    pub variants: Vec<Variant>,
    /// Options (opaque).
    pub options: Vec<Value>,
    /// Images (opaque).
    pub images: Vec<Value>,
    /// Main image (opaque).
    pub image: Option<Value>,
    /// Media (opaque).
    pub media: Vec<Value>,
    /// Variant references with update times.
    pub variant_gids: Vec<VariantGid>,
    /// Component flag.
    pub has_variants_that_requires_components: bool,
    /// Taxonomy category (opaque).
    pub category: Option<Value>,
}

/// An inventory level (`inventory_levels/update`, `inventory_levels/set.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryLevel {
    /// Inventory item.
    pub inventory_item_id: u64,
    /// Location.
    pub location_id: u64,
    /// Available quantity.
    pub available: Option<i64>,
    /// Update time.
    pub updated_at: String,
    /// GraphQL id.
    pub admin_graphql_api_id: String,
}
