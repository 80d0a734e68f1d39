//! Typed Shopify REST webhook payloads (API version 2026-07), only the fields the
//! flows use; unknown fields are ignored so that new API versions do not break us.
//!
//! Ids exceed 2^53 and are read as `u64`, never floats. Money arrives as strings
//! (`"404.95"`) except in refund line items (`subtotal`, `total_tax` are numbers);
//! both become exact decimals.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// `{amount, currency_code}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyV2 {
    /// Amount.
    pub amount: Decimal,
    /// ISO 4217 code.
    pub currency_code: String,
}

/// `*_set`: the amount in shop and presentment currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneySet {
    /// Shop currency.
    pub shop_money: MoneyV2,
    /// Buyer's currency.
    pub presentment_money: MoneyV2,
}

/// A postal address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShopifyAddress {
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Full name.
    pub name: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Street line 1.
    pub address1: Option<String>,
    /// Street line 2.
    pub address2: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Province name.
    pub province: Option<String>,
    /// Province code.
    pub province_code: Option<String>,
    /// Postal code.
    pub zip: Option<String>,
    /// Country name.
    pub country: Option<String>,
    /// ISO country code.
    pub country_code: Option<String>,
    /// Phone.
    pub phone: Option<String>,
}

/// A tax applied to a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopifyTaxLine {
    /// Tax amount.
    pub price: Decimal,
    /// Rate as a fraction.
    pub rate: Decimal,
    /// Tax name.
    pub title: String,
}

/// A discount allocated to a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscountAllocation {
    /// Amount.
    pub amount: Decimal,
    /// Index into the order's `discount_applications`.
    #[serde(default)]
    pub discount_application_index: Option<u32>,
}

/// A name/value pair (`note_attributes`, line `properties`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameValue {
    /// Name.
    pub name: String,
    /// Value (Shopify sends strings, but be lenient).
    #[serde(default)]
    pub value: serde_json::Value,
}

/// An order line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineItem {
    /// Line id.
    pub id: u64,
    /// Product, absent for custom items.
    pub product_id: Option<u64>,
    /// Variant, absent for custom items.
    pub variant_id: Option<u64>,
    /// SKU.
    pub sku: Option<String>,
    /// Title.
    pub title: String,
    /// Display name.
    pub name: Option<String>,
    /// Quantity.
    pub quantity: u32,
    /// Unit price.
    pub price: Decimal,
    /// Whether taxable.
    #[serde(default)]
    pub taxable: bool,
    /// Whether it ships.
    #[serde(default)]
    pub requires_shipping: bool,
    /// Taxes.
    #[serde(default)]
    pub tax_lines: Vec<ShopifyTaxLine>,
    /// Discounts.
    #[serde(default)]
    pub discount_allocations: Vec<DiscountAllocation>,
}

/// A customer (webhook `customers/create` or embedded in an order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShopifyCustomer {
    /// Id.
    pub id: u64,
    /// E-mail.
    pub email: Option<String>,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Preferred currency.
    pub currency: Option<String>,
    /// Tax exempt.
    #[serde(default)]
    pub tax_exempt: bool,
    /// Note.
    pub note: Option<String>,
    /// Comma-separated tags.
    #[serde(default)]
    pub tags: Option<String>,
    /// Default address.
    pub default_address: Option<ShopifyAddress>,
    /// Created.
    pub created_at: Option<String>,
    /// Updated.
    pub updated_at: Option<String>,
}

/// `orders/create` and `orders/updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShopifyOrder {
    /// Id.
    pub id: u64,
    /// Reference such as `#1001`.
    pub name: String,
    /// Order currency.
    pub currency: String,
    /// E-mail.
    pub email: Option<String>,
    /// Payment state.
    pub financial_status: Option<String>,
    /// Customer, absent for guests.
    pub customer: Option<ShopifyCustomer>,
    /// Billing address.
    pub billing_address: Option<ShopifyAddress>,
    /// Shipping address.
    pub shipping_address: Option<ShopifyAddress>,
    /// Lines.
    pub line_items: Vec<LineItem>,
    /// Shipping total.
    pub total_shipping_price_set: Option<MoneySet>,
    /// Discounts total.
    pub total_discounts: Decimal,
    /// Tax total.
    pub total_tax: Decimal,
    /// Grand total.
    pub total_price: Decimal,
    /// Whether prices include tax.
    #[serde(default)]
    pub taxes_included: bool,
    /// Note.
    pub note: Option<String>,
    /// Cart attributes.
    #[serde(default)]
    pub note_attributes: Vec<NameValue>,
    /// Comma-separated tags.
    #[serde(default)]
    pub tags: Option<String>,
    /// Created.
    pub created_at: String,
    /// Updated.
    pub updated_at: Option<String>,
    /// Cancelled.
    pub cancelled_at: Option<String>,
}

/// A product variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShopifyVariant {
    /// Id.
    pub id: u64,
    /// SKU.
    pub sku: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// Price.
    pub price: Decimal,
    /// Compare-at price.
    pub compare_at_price: Option<Decimal>,
    /// Barcode.
    pub barcode: Option<String>,
    /// Inventory item.
    pub inventory_item_id: Option<u64>,
    /// Options.
    pub option1: Option<String>,
    /// Options.
    pub option2: Option<String>,
    /// Options.
    pub option3: Option<String>,
    /// Taxable.
    #[serde(default)]
    pub taxable: bool,
}

/// `products/update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShopifyProduct {
    /// Id.
    pub id: u64,
    /// Title.
    pub title: String,
    /// HTML body.
    pub body_html: Option<String>,
    /// Vendor.
    pub vendor: Option<String>,
    /// Product type.
    pub product_type: Option<String>,
    /// Handle.
    pub handle: Option<String>,
    /// `active`, `draft`, `archived`.
    pub status: Option<String>,
    /// Comma-separated tags.
    pub tags: Option<String>,
    /// Variants.
    #[serde(default)]
    pub variants: Vec<ShopifyVariant>,
    /// Updated.
    pub updated_at: Option<String>,
}

/// `inventory_levels/update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShopifyInventoryLevel {
    /// Inventory item.
    pub inventory_item_id: u64,
    /// Location.
    pub location_id: u64,
    /// Available quantity (may be null when untracked).
    pub available: Option<i64>,
    /// Updated.
    pub updated_at: Option<String>,
}

/// A fulfilled line (subset of a line item).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FulfillmentLineItem {
    /// Line id.
    pub id: u64,
    /// SKU.
    pub sku: Option<String>,
    /// Quantity.
    pub quantity: u32,
}

/// `fulfillments/create` and `fulfillments/update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShopifyFulfillment {
    /// Id.
    pub id: u64,
    /// Order.
    pub order_id: u64,
    /// Status.
    pub status: Option<String>,
    /// Carrier.
    pub tracking_company: Option<String>,
    /// Tracking numbers.
    #[serde(default)]
    pub tracking_numbers: Vec<String>,
    /// Tracking URLs.
    #[serde(default)]
    pub tracking_urls: Vec<String>,
    /// Lines.
    #[serde(default)]
    pub line_items: Vec<FulfillmentLineItem>,
    /// Created.
    pub created_at: Option<String>,
}

/// An order transaction (own resource; embedded in refunds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShopifyTransaction {
    /// Id.
    pub id: u64,
    /// Order.
    pub order_id: Option<u64>,
    /// `sale`, `capture`, `refund`, ...
    pub kind: String,
    /// Gateway.
    pub gateway: Option<String>,
    /// `success`, `failure`, ...
    pub status: Option<String>,
    /// Amount.
    pub amount: Decimal,
    /// Currency; null in refund payloads.
    pub currency: Option<String>,
    /// Created.
    pub created_at: Option<String>,
    /// Processed.
    pub processed_at: Option<String>,
}

/// A refunded line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundLineItem {
    /// Id.
    pub id: u64,
    /// Refunded order line.
    pub line_item_id: u64,
    /// Quantity.
    pub quantity: u32,
    /// `no_restock`, `cancel`, `return`, ...
    pub restock_type: Option<String>,
    /// Refunded amount (a JSON number here).
    pub subtotal: Decimal,
    /// Refunded tax (a JSON number here).
    pub total_tax: Decimal,
    /// Currency-carrying twin of `subtotal`.
    pub subtotal_set: Option<MoneySet>,
    /// The order line.
    pub line_item: Option<LineItem>,
}

/// `refunds/create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShopifyRefund {
    /// Id.
    pub id: u64,
    /// Order.
    pub order_id: u64,
    /// Note.
    pub note: Option<String>,
    /// Whether stock is returned.
    #[serde(default)]
    pub restock: bool,
    /// Lines.
    #[serde(default)]
    pub refund_line_items: Vec<RefundLineItem>,
    /// Money movements.
    #[serde(default)]
    pub transactions: Vec<ShopifyTransaction>,
    /// Created.
    pub created_at: Option<String>,
}
