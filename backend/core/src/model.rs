//! Canonical business model shared by every flow.
//!
//! These types are the common language between the connectors: Shopify payloads
//! convert into them, D365 entities convert from and to them. Money is always a
//! decimal with its ISO 4217 currency; identifiers stay strings because each
//! system has its own id space (Shopify 64-bit ids, D365 string keys).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Error raised when a value cannot become a canonical type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The text is not a three-letter ISO 4217 currency code.
    #[error("invalid ISO 4217 currency code {0:?}")]
    InvalidCurrency(String),
    /// Two amounts in different currencies were combined.
    #[error("currency mismatch: {left} vs {right}")]
    CurrencyMismatch {
        /// Currency of the left operand.
        left: CurrencyCode,
        /// Currency of the right operand.
        right: CurrencyCode,
    },
}

/// ISO 4217 alphabetic currency code (three upper-case ASCII letters).
///
/// Stored inline so that `Money` stays `Copy` and cheap to pass around.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CurrencyCode([u8; 3]);

impl CurrencyCode {
    /// Parses a code, accepting lower case input (Shopify is not always consistent).
    pub fn new(code: &str) -> Result<Self, ModelError> {
        let b = code.trim().as_bytes();
        if b.len() != 3 || !b.iter().all(u8::is_ascii_alphabetic) {
            return Err(ModelError::InvalidCurrency(code.to_owned()));
        }
        Ok(Self([
            b[0].to_ascii_uppercase(),
            b[1].to_ascii_uppercase(),
            b[2].to_ascii_uppercase(),
        ]))
    }

    /// The code as a string slice.
    pub fn as_str(&self) -> &str {
        // The constructor only admits ASCII letters, so this cannot fail; fall back
        // to a sentinel rather than panic to keep the invariant local.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl fmt::Debug for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CurrencyCode({})", self.as_str())
    }
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CurrencyCode {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl Serialize for CurrencyCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CurrencyCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// An amount of money: a decimal and its currency. Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// The amount, exact.
    pub amount: Decimal,
    /// The currency of `amount`.
    pub currency: CurrencyCode,
}

impl Money {
    /// Builds an amount in a currency.
    pub fn new(amount: Decimal, currency: CurrencyCode) -> Self {
        Self { amount, currency }
    }

    /// Zero in the given currency.
    pub fn zero(currency: CurrencyCode) -> Self {
        Self::new(Decimal::ZERO, currency)
    }

    /// Adds two amounts of the same currency.
    pub fn checked_add(self, other: Money) -> Result<Money, ModelError> {
        if self.currency != other.currency {
            return Err(ModelError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            });
        }
        Ok(Money::new(self.amount + other.amount, self.currency))
    }
}

/// A postal address, in the shape both systems can be mapped onto.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// Given name of the addressee.
    pub first_name: Option<String>,
    /// Family name of the addressee.
    pub last_name: Option<String>,
    /// Company name.
    pub company: Option<String>,
    /// First street line (street and number).
    pub line1: Option<String>,
    /// Second street line (suite, floor...).
    pub line2: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Province, state or region code (e.g. `KY`).
    pub region_code: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country_code: Option<String>,
    /// Phone number as entered.
    pub phone: Option<String>,
}

/// A customer (Shopify customer, D365 customer account).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// Source-system id (Shopify customer id).
    pub external_id: Option<String>,
    /// Target-system key (D365 `CustomerAccount`), once linked.
    pub account: Option<String>,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Primary e-mail.
    pub email: Option<String>,
    /// Primary phone.
    pub phone: Option<String>,
    /// Preferred currency.
    pub currency: Option<CurrencyCode>,
    /// Whether sales to this customer are tax exempt.
    pub tax_exempt: bool,
    /// Default address.
    pub default_address: Option<Address>,
    /// Free-text note.
    pub note: Option<String>,
    /// Tags, already split.
    pub tags: Vec<String>,
    /// Creation time.
    pub created_at: Option<DateTime<Utc>>,
    /// Last modification time (ordering key for idempotency).
    pub updated_at: Option<DateTime<Utc>>,
}

/// One tax applied to a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxLine {
    /// Tax name (e.g. `State Tax`).
    pub title: String,
    /// Rate as a fraction (0.06 for 6 %).
    pub rate: Decimal,
    /// Tax amount.
    pub amount: Money,
}

/// A discount allocated to a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discount {
    /// Discount code or title, when known.
    pub code: Option<String>,
    /// Discounted amount.
    pub amount: Money,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// Source-system line id.
    pub external_id: Option<String>,
    /// 1-based position within the order.
    pub line_number: u32,
    /// Stock keeping unit; becomes the D365 `ItemNumber`.
    pub sku: Option<String>,
    /// Display name.
    pub title: String,
    /// Ordered quantity.
    pub quantity: Decimal,
    /// Unit price before discounts.
    pub unit_price: Money,
    /// Discounts allocated to this line.
    pub discounts: Vec<Discount>,
    /// Taxes on this line.
    pub tax_lines: Vec<TaxLine>,
    /// Whether the line is taxable at all.
    pub taxable: bool,
    /// Whether the line needs shipping.
    pub requires_shipping: bool,
}

impl OrderLine {
    /// Sum of the discounts allocated to the line.
    pub fn discount_total(&self) -> Result<Money, ModelError> {
        self.discounts
            .iter()
            .try_fold(Money::zero(self.unit_price.currency), |acc, d| {
                acc.checked_add(d.amount)
            })
    }

    /// Quantity × unit price minus discounts.
    pub fn net_amount(&self) -> Result<Money, ModelError> {
        let gross = Money::new(
            self.unit_price.amount * self.quantity,
            self.unit_price.currency,
        );
        let discounts = self.discount_total()?;
        Ok(Money::new(gross.amount - discounts.amount, gross.currency))
    }
}

/// Payment state of an order, in Shopify's vocabulary (`financial_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinancialStatus {
    /// Payment pending.
    Pending,
    /// Payment authorised, not captured.
    Authorized,
    /// Partially paid.
    PartiallyPaid,
    /// Paid in full.
    Paid,
    /// Partially refunded.
    PartiallyRefunded,
    /// Refunded in full.
    Refunded,
    /// Authorisation voided.
    Voided,
    /// Anything newer that we do not model yet.
    #[serde(other)]
    Unknown,
}

/// A sales order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Source-system id (Shopify order id).
    pub external_id: String,
    /// Human reference (Shopify `name`, e.g. `#1001`); the idempotency key in D365.
    pub reference: String,
    /// Order currency.
    pub currency: CurrencyCode,
    /// Buyer, absent for guest checkouts.
    pub customer: Option<Customer>,
    /// Contact e-mail of the order.
    pub email: Option<String>,
    /// Billing address.
    pub billing_address: Option<Address>,
    /// Shipping address.
    pub shipping_address: Option<Address>,
    /// Lines in order.
    pub lines: Vec<OrderLine>,
    /// Shipping charges.
    pub shipping_total: Money,
    /// Order-level discounts total.
    pub discount_total: Money,
    /// Tax total.
    pub tax_total: Money,
    /// Grand total.
    pub total: Money,
    /// Whether line prices include tax.
    pub taxes_included: bool,
    /// Payment state.
    pub financial_status: FinancialStatus,
    /// Free-text note.
    pub note: Option<String>,
    /// Cart attributes (`note_attributes`), in order.
    pub note_attributes: Vec<(String, String)>,
    /// Tags, already split.
    pub tags: Vec<String>,
    /// Placement time.
    pub created_at: DateTime<Utc>,
    /// Last modification time.
    pub updated_at: Option<DateTime<Utc>>,
    /// Cancellation time, if cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
}

/// A product variant (Shopify variant, D365 released product or variant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    /// Source-system id.
    pub external_id: Option<String>,
    /// SKU; the D365 `ItemNumber`.
    pub sku: Option<String>,
    /// Variant title (e.g. `Small`).
    pub title: Option<String>,
    /// Selling price.
    pub price: Option<Money>,
    /// Compare-at (list) price.
    pub compare_at_price: Option<Money>,
    /// Barcode (GTIN/EAN/UPC).
    pub barcode: Option<String>,
    /// Option values (size, colour...), in order.
    pub options: Vec<String>,
    /// Shopify inventory item id, when known.
    pub inventory_item_id: Option<String>,
    /// Whether tax applies.
    pub taxable: bool,
}

/// A product with its variants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Source-system id.
    pub external_id: Option<String>,
    /// Title.
    pub title: String,
    /// HTML description.
    pub description_html: Option<String>,
    /// Vendor / brand.
    pub vendor: Option<String>,
    /// Product type / category name.
    pub product_type: Option<String>,
    /// URL handle.
    pub handle: Option<String>,
    /// Whether the product is active for sale.
    pub active: bool,
    /// Tags, already split.
    pub tags: Vec<String>,
    /// Variants (at least one in Shopify).
    pub variants: Vec<Variant>,
    /// Last modification time.
    pub updated_at: Option<DateTime<Utc>>,
}

/// Stock of one item at one location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryLevel {
    /// SKU / D365 `ItemNumber`.
    pub sku: Option<String>,
    /// Shopify inventory item id, when known.
    pub inventory_item_id: Option<String>,
    /// Location: Shopify location id or D365 warehouse id.
    pub location: String,
    /// Quantity available for sale.
    pub available: Decimal,
    /// Physical on-hand quantity, when known.
    pub on_hand: Option<Decimal>,
    /// Last modification time.
    pub updated_at: Option<DateTime<Utc>>,
}

/// Carrier tracking of one shipment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracking {
    /// Carrier name (e.g. `UPS`).
    pub company: Option<String>,
    /// Tracking numbers.
    pub numbers: Vec<String>,
    /// Tracking URLs, parallel to `numbers` when known.
    pub urls: Vec<String>,
}

/// One shipped line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfillmentLine {
    /// Order line id in the source system.
    pub line_external_id: Option<String>,
    /// SKU.
    pub sku: Option<String>,
    /// Shipped quantity.
    pub quantity: Decimal,
}

/// A shipment of (part of) an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fulfillment {
    /// Source-system id.
    pub external_id: Option<String>,
    /// The order this ships.
    pub order_external_id: String,
    /// Status text (e.g. `success`, `pending`).
    pub status: Option<String>,
    /// Carrier tracking.
    pub tracking: Tracking,
    /// Shipped lines.
    pub lines: Vec<FulfillmentLine>,
    /// Shipment time.
    pub shipped_at: Option<DateTime<Utc>>,
}

/// One refunded line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundLine {
    /// Refunded order line id.
    pub line_external_id: Option<String>,
    /// SKU of the refunded item.
    pub sku: Option<String>,
    /// Refunded quantity.
    pub quantity: Decimal,
    /// Refunded amount before tax.
    pub subtotal: Money,
    /// Refunded tax.
    pub total_tax: Money,
    /// Whether stock goes back on hand.
    pub restock: bool,
}

/// Kind of a payment transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionKind {
    /// Authorisation only.
    Authorization,
    /// Capture of an authorisation.
    Capture,
    /// Authorise and capture at once.
    Sale,
    /// Cancelled authorisation.
    Void,
    /// Money returned to the buyer.
    Refund,
    /// Anything else.
    #[serde(other)]
    Unknown,
}

/// A payment transaction (Shopify order transaction, D365 payment journal line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Source-system id.
    pub external_id: String,
    /// The order paid.
    pub order_external_id: Option<String>,
    /// Kind.
    pub kind: TransactionKind,
    /// Gateway (e.g. `shopify_payments`).
    pub gateway: Option<String>,
    /// Status (`success`, `failure`...).
    pub status: Option<String>,
    /// Amount; its currency may be unknown in Shopify refunds (`currency: null`),
    /// in which case the order currency applies and the converter must supply it.
    pub amount: Money,
    /// Processing time.
    pub processed_at: Option<DateTime<Utc>>,
}

/// Alias kept because the architecture calls it both ways.
pub type Transaction = Payment;

/// A refund against an order (a credit note in D365).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// Source-system id.
    pub external_id: String,
    /// The refunded order.
    pub order_external_id: String,
    /// Reason / note.
    pub note: Option<String>,
    /// Refunded lines.
    pub lines: Vec<RefundLine>,
    /// Money movements of this refund.
    pub transactions: Vec<Payment>,
    /// Creation time.
    pub created_at: Option<DateTime<Utc>>,
}

impl Refund {
    /// Total refunded to the buyer (sum of successful refund transactions).
    pub fn refunded_total(&self, currency: CurrencyCode) -> Result<Money, ModelError> {
        self.transactions
            .iter()
            .filter(|t| t.kind == TransactionKind::Refund && t.status.as_deref() != Some("failure"))
            .try_fold(Money::zero(currency), |acc, t| acc.checked_add(t.amount))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn currency_code_normalises_and_rejects() {
        assert_eq!(CurrencyCode::new("usd").unwrap().as_str(), "USD");
        assert!(CurrencyCode::new("US").is_err());
        assert!(CurrencyCode::new("U$D").is_err());
    }

    #[test]
    fn money_refuses_mixed_currencies() {
        let usd = CurrencyCode::new("USD").unwrap();
        let eur = CurrencyCode::new("EUR").unwrap();
        let a = Money::new(dec!(1.10), usd);
        assert_eq!(a.checked_add(a).unwrap().amount, dec!(2.20));
        assert!(a.checked_add(Money::new(dec!(1), eur)).is_err());
    }

    #[test]
    fn money_serialises_amount_as_string() {
        let m = Money::new(dec!(404.95), CurrencyCode::new("USD").unwrap());
        let j = serde_json::to_string(&m).unwrap();
        assert_eq!(j, r#"{"amount":"404.95","currency":"USD"}"#);
        let back: Money = serde_json::from_str(&j).unwrap();
        assert_eq!(back, m);
    }
}
