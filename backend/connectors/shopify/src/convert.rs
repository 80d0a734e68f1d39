//! Shopify payloads to and from the canonical model.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use syncline_core::model::{
    Address, CurrencyCode, Customer, Discount, FinancialStatus, Fulfillment, FulfillmentLine,
    InventoryLevel, ModelError, Money, Order, OrderLine, Payment, Product, Refund, RefundLine,
    TaxLine, Tracking, TransactionKind, Variant,
};

use crate::payload::{
    ShopifyAddress, ShopifyCustomer, ShopifyFulfillment, ShopifyInventoryLevel, ShopifyOrder,
    ShopifyProduct, ShopifyRefund, ShopifyTransaction,
};

/// Why a payload does not fit the canonical model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// Invalid currency or mixed currencies.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A timestamp is not ISO 8601.
    #[error("field {field}: invalid timestamp {value:?}")]
    Timestamp {
        /// Field name.
        field: &'static str,
        /// Offending text.
        value: String,
    },
}

fn ts(field: &'static str, v: Option<&str>) -> Result<Option<DateTime<Utc>>, ConvertError> {
    match v {
        None => Ok(None),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|d| Some(d.with_timezone(&Utc)))
            .map_err(|_| ConvertError::Timestamp {
                field,
                value: s.to_owned(),
            }),
    }
}

/// Splits Shopify's comma-and-space separated tags.
pub fn split_tags(tags: Option<&str>) -> Vec<String> {
    tags.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

impl From<&ShopifyAddress> for Address {
    fn from(a: &ShopifyAddress) -> Self {
        Address {
            first_name: a.first_name.clone(),
            last_name: a.last_name.clone(),
            company: a.company.clone(),
            line1: a.address1.clone(),
            line2: a.address2.clone(),
            city: a.city.clone(),
            region_code: a.province_code.clone(),
            postal_code: a.zip.clone(),
            country_code: a.country_code.clone(),
            phone: a.phone.clone(),
        }
    }
}

impl From<&Address> for ShopifyAddress {
    fn from(a: &Address) -> Self {
        let name = match (&a.first_name, &a.last_name) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (f, l) => f.clone().or_else(|| l.clone()),
        };
        ShopifyAddress {
            first_name: a.first_name.clone(),
            last_name: a.last_name.clone(),
            name,
            company: a.company.clone(),
            address1: a.line1.clone(),
            address2: a.line2.clone(),
            city: a.city.clone(),
            province: None,
            province_code: a.region_code.clone(),
            zip: a.postal_code.clone(),
            country: None,
            country_code: a.country_code.clone(),
            phone: a.phone.clone(),
        }
    }
}

impl TryFrom<&ShopifyCustomer> for Customer {
    type Error = ConvertError;
    fn try_from(c: &ShopifyCustomer) -> Result<Self, ConvertError> {
        Ok(Customer {
            external_id: Some(c.id.to_string()),
            account: None,
            first_name: c.first_name.clone(),
            last_name: c.last_name.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            currency: c.currency.as_deref().map(CurrencyCode::new).transpose()?,
            tax_exempt: c.tax_exempt,
            default_address: c.default_address.as_ref().map(Address::from),
            note: c.note.clone(),
            tags: split_tags(c.tags.as_deref()),
            created_at: ts("created_at", c.created_at.as_deref())?,
            updated_at: ts("updated_at", c.updated_at.as_deref())?,
        })
    }
}

fn financial_status(s: Option<&str>) -> FinancialStatus {
    serde_json::from_value(serde_json::Value::from(s.unwrap_or("pending")))
        .unwrap_or(FinancialStatus::Unknown)
}

impl TryFrom<&ShopifyOrder> for Order {
    type Error = ConvertError;
    fn try_from(o: &ShopifyOrder) -> Result<Self, ConvertError> {
        let cur = CurrencyCode::new(&o.currency)?;
        let money = |d: Decimal| Money::new(d, cur);
        let lines = o
            .line_items
            .iter()
            .enumerate()
            .map(|(i, l)| OrderLine {
                external_id: Some(l.id.to_string()),
                line_number: u32::try_from(i + 1).unwrap_or(u32::MAX),
                sku: l.sku.clone().filter(|s| !s.is_empty()),
                title: l.name.clone().unwrap_or_else(|| l.title.clone()),
                quantity: Decimal::from(l.quantity),
                unit_price: money(l.price),
                discounts: l
                    .discount_allocations
                    .iter()
                    .map(|d| Discount {
                        code: None,
                        amount: money(d.amount),
                    })
                    .collect(),
                tax_lines: l
                    .tax_lines
                    .iter()
                    .map(|t| TaxLine {
                        title: t.title.clone(),
                        rate: t.rate,
                        amount: money(t.price),
                    })
                    .collect(),
                taxable: l.taxable,
                requires_shipping: l.requires_shipping,
            })
            .collect();
        let shipping = o
            .total_shipping_price_set
            .as_ref()
            .map_or(Decimal::ZERO, |s| s.shop_money.amount);
        Ok(Order {
            external_id: o.id.to_string(),
            reference: o.name.clone(),
            currency: cur,
            customer: o.customer.as_ref().map(Customer::try_from).transpose()?,
            email: o.email.clone(),
            billing_address: o.billing_address.as_ref().map(Address::from),
            shipping_address: o.shipping_address.as_ref().map(Address::from),
            lines,
            shipping_total: money(shipping),
            discount_total: money(o.total_discounts),
            tax_total: money(o.total_tax),
            total: money(o.total_price),
            taxes_included: o.taxes_included,
            financial_status: financial_status(o.financial_status.as_deref()),
            note: o.note.clone(),
            note_attributes: o
                .note_attributes
                .iter()
                .map(|a| {
                    let v = match &a.value {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (a.name.clone(), v)
                })
                .collect(),
            tags: split_tags(o.tags.as_deref()),
            created_at: ts("created_at", Some(&o.created_at))?.unwrap_or_default(),
            updated_at: ts("updated_at", o.updated_at.as_deref())?,
            cancelled_at: ts("cancelled_at", o.cancelled_at.as_deref())?,
        })
    }
}

/// Converts a product; variant prices are in the shop currency, which the
/// product payload does not carry.
pub fn product_to_core(
    p: &ShopifyProduct,
    shop_currency: CurrencyCode,
) -> Result<Product, ConvertError> {
    Ok(Product {
        external_id: Some(p.id.to_string()),
        title: p.title.clone(),
        description_html: p.body_html.clone(),
        vendor: p.vendor.clone(),
        product_type: p.product_type.clone().filter(|s| !s.is_empty()),
        handle: p.handle.clone(),
        active: p.status.as_deref().is_none_or(|s| s == "active"),
        tags: split_tags(p.tags.as_deref()),
        variants: p
            .variants
            .iter()
            .map(|v| Variant {
                external_id: Some(v.id.to_string()),
                sku: v.sku.clone(),
                title: v.title.clone(),
                price: Some(Money::new(v.price, shop_currency)),
                compare_at_price: v.compare_at_price.map(|c| Money::new(c, shop_currency)),
                barcode: v.barcode.clone(),
                options: [&v.option1, &v.option2, &v.option3]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect(),
                inventory_item_id: v.inventory_item_id.map(|i| i.to_string()),
                taxable: v.taxable,
            })
            .collect(),
        updated_at: ts("updated_at", p.updated_at.as_deref())?,
    })
}

impl TryFrom<&ShopifyInventoryLevel> for InventoryLevel {
    type Error = ConvertError;
    fn try_from(l: &ShopifyInventoryLevel) -> Result<Self, ConvertError> {
        Ok(InventoryLevel {
            sku: None,
            inventory_item_id: Some(l.inventory_item_id.to_string()),
            location: l.location_id.to_string(),
            available: Decimal::from(l.available.unwrap_or(0)),
            on_hand: None,
            updated_at: ts("updated_at", l.updated_at.as_deref())?,
        })
    }
}

impl TryFrom<&ShopifyFulfillment> for Fulfillment {
    type Error = ConvertError;
    fn try_from(f: &ShopifyFulfillment) -> Result<Self, ConvertError> {
        Ok(Fulfillment {
            external_id: Some(f.id.to_string()),
            order_external_id: f.order_id.to_string(),
            status: f.status.clone(),
            tracking: Tracking {
                company: f.tracking_company.clone(),
                numbers: f.tracking_numbers.clone(),
                urls: f.tracking_urls.clone(),
            },
            lines: f
                .line_items
                .iter()
                .map(|l| FulfillmentLine {
                    line_external_id: Some(l.id.to_string()),
                    sku: l.sku.clone(),
                    quantity: Decimal::from(l.quantity),
                })
                .collect(),
            shipped_at: ts("created_at", f.created_at.as_deref())?,
        })
    }
}

fn kind(k: &str) -> TransactionKind {
    serde_json::from_value(serde_json::Value::from(k)).unwrap_or(TransactionKind::Unknown)
}

/// Converts a transaction; `fallback` is the order currency, used when Shopify
/// sends `currency: null` (refund payloads).
pub fn transaction_to_core(
    t: &ShopifyTransaction,
    fallback: CurrencyCode,
) -> Result<Payment, ConvertError> {
    let cur = match t.currency.as_deref() {
        Some(c) => CurrencyCode::new(c)?,
        None => fallback,
    };
    Ok(Payment {
        external_id: t.id.to_string(),
        order_external_id: t.order_id.map(|o| o.to_string()),
        kind: kind(&t.kind),
        gateway: t.gateway.clone(),
        status: t.status.clone(),
        amount: Money::new(t.amount, cur),
        processed_at: ts(
            "processed_at",
            t.processed_at.as_deref().or(t.created_at.as_deref()),
        )?,
    })
}

/// Converts a refund; its line amounts carry their currency in `subtotal_set`,
/// otherwise `order_currency` applies.
pub fn refund_to_core(
    r: &ShopifyRefund,
    order_currency: CurrencyCode,
) -> Result<Refund, ConvertError> {
    let mut lines = Vec::new();
    for l in &r.refund_line_items {
        let cur = match &l.subtotal_set {
            Some(s) => CurrencyCode::new(&s.shop_money.currency_code)?,
            None => order_currency,
        };
        lines.push(RefundLine {
            line_external_id: Some(l.line_item_id.to_string()),
            sku: l.line_item.as_ref().and_then(|li| li.sku.clone()),
            quantity: Decimal::from(l.quantity),
            subtotal: Money::new(l.subtotal, cur),
            total_tax: Money::new(l.total_tax, cur),
            restock: l.restock_type.as_deref().is_some_and(|t| t != "no_restock"),
        });
    }
    Ok(Refund {
        external_id: r.id.to_string(),
        order_external_id: r.order_id.to_string(),
        note: r.note.clone(),
        lines,
        transactions: r
            .transactions
            .iter()
            .map(|t| transaction_to_core(t, order_currency))
            .collect::<Result<_, _>>()?,
        created_at: ts("created_at", r.created_at.as_deref())?,
    })
}
