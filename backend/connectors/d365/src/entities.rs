//! Typed D365 F&O OData entities: the properties the flows read and write.
//!
//! Property names are the entity's (PascalCase, plus `dataAreaId`); decimals
//! travel as JSON numbers, kept exact through serde_json's arbitrary precision;
//! absent options are left out of request bodies rather than sent as null.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

mod dec_opt {
    //! Optional decimals as JSON numbers (D365) that also accept strings.
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        rust_decimal::serde::arbitrary_precision_option::serialize(v, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        Option::<Decimal>::deserialize(d)
    }
}

/// `SalesOrderHeadersV2`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SalesOrderHeaderV2 {
    /// Legal entity.
    #[serde(rename = "dataAreaId", skip_serializing_if = "Option::is_none")]
    pub data_area_id: Option<String>,
    /// Assigned by the number sequence on create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sales_order_number: Option<String>,
    /// External reference (Shopify order name/id): the idempotency key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customers_order_reference: Option<String>,
    /// Customer requisition number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_requisition_number: Option<String>,
    /// Ordering customer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ordering_customer_account_number: Option<String>,
    /// Invoice customer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_customer_account_number: Option<String>,
    /// Currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency_code: Option<String>,
    /// Requested ship date (ISO 8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_shipping_date: Option<String>,
    /// E-mail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Delivery name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_address_name: Option<String>,
    /// Street without number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_address_street: Option<String>,
    /// House number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_address_street_number: Option<String>,
    /// City.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_address_city: Option<String>,
    /// Postal code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_address_zip_code: Option<String>,
    /// State.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_address_state_id: Option<String>,
    /// ISO country.
    #[serde(
        rename = "DeliveryAddressCountryRegionISOCode",
        skip_serializing_if = "Option::is_none"
    )]
    pub delivery_address_country_region_iso_code: Option<String>,
    /// Order status (enum name, read only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sales_order_status: Option<String>,
    /// Order total (read only).
    #[serde(default, with = "dec_opt", skip_serializing_if = "Option::is_none")]
    pub order_total_amount: Option<Decimal>,
    /// Tax total.
    #[serde(default, with = "dec_opt", skip_serializing_if = "Option::is_none")]
    pub order_total_tax_amount: Option<Decimal>,
    /// Charges (shipping).
    #[serde(default, with = "dec_opt", skip_serializing_if = "Option::is_none")]
    pub order_total_charges_amount: Option<Decimal>,
}

/// `SalesOrderLines`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SalesOrderLine {
    /// Legal entity.
    #[serde(rename = "dataAreaId", skip_serializing_if = "Option::is_none")]
    pub data_area_id: Option<String>,
    /// Key, server-assigned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory_lot_id: Option<String>,
    /// Parent order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sales_order_number: Option<String>,
    /// Line number (a decimal in D365).
    #[serde(default, with = "dec_opt", skip_serializing_if = "Option::is_none")]
    pub line_number: Option<Decimal>,
    /// Item (Shopify SKU).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_number: Option<String>,
    /// Quantity (negative on credit notes).
    #[serde(default, with = "dec_opt", skip_serializing_if = "Option::is_none")]
    pub ordered_sales_quantity: Option<Decimal>,
    /// Unit price.
    #[serde(default, with = "dec_opt", skip_serializing_if = "Option::is_none")]
    pub sales_price: Option<Decimal>,
    /// Line amount.
    #[serde(default, with = "dec_opt", skip_serializing_if = "Option::is_none")]
    pub line_amount: Option<Decimal>,
    /// Discount amount.
    #[serde(default, with = "dec_opt", skip_serializing_if = "Option::is_none")]
    pub line_discount_amount: Option<Decimal>,
    /// Item sales tax group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sales_tax_item_group_code: Option<String>,
    /// Customer's line reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customers_line_number: Option<i64>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_description: Option<String>,
}

/// `CustomersV3`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomerV3 {
    /// Legal entity.
    #[serde(rename = "dataAreaId", skip_serializing_if = "Option::is_none")]
    pub data_area_id: Option<String>,
    /// Account (number sequence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_account: Option<String>,
    /// `Person` or `Organization`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub party_type: Option<String>,
    /// Given name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person_first_name: Option<String>,
    /// Family name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person_last_name: Option<String>,
    /// Organisation name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
    /// E-mail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_contact_email: Option<String>,
    /// Phone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_contact_phone: Option<String>,
    /// Customer group (must exist in D365).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_group_id: Option<String>,
    /// Currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sales_currency_code: Option<String>,
    /// Street.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_street: Option<String>,
    /// City.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_city: Option<String>,
    /// Postal code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_zip_code: Option<String>,
    /// State.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_state: Option<String>,
    /// ISO country.
    #[serde(
        rename = "AddressCountryRegionISOCode",
        skip_serializing_if = "Option::is_none"
    )]
    pub address_country_region_iso_code: Option<String>,
}

/// `ReleasedProductsV2`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReleasedProductV2 {
    /// Legal entity.
    #[serde(rename = "dataAreaId", skip_serializing_if = "Option::is_none")]
    pub data_area_id: Option<String>,
    /// Item number (Shopify SKU).
    pub item_number: String,
    /// Product number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_number: Option<String>,
    /// Search name (used as the title).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_name: Option<String>,
    /// Product group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_group_id: Option<String>,
    /// Lifecycle state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_lifecycle_state_id: Option<String>,
    /// Base sales price.
    #[serde(default, with = "dec_opt", skip_serializing_if = "Option::is_none")]
    pub sales_price: Option<Decimal>,
    /// Sales unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sales_unit_symbol: Option<String>,
}

/// `WarehousesOnHandV2`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WarehouseOnHandV2 {
    /// Legal entity.
    #[serde(rename = "dataAreaId", skip_serializing_if = "Option::is_none")]
    pub data_area_id: Option<String>,
    /// Item.
    pub item_number: String,
    /// Site.
    #[serde(default)]
    pub inventory_site_id: String,
    /// Warehouse.
    #[serde(default)]
    pub inventory_warehouse_id: String,
    /// Available physical quantity.
    #[serde(default, with = "dec_opt")]
    pub available_on_hand_quantity: Option<Decimal>,
    /// Physical on-hand quantity.
    #[serde(default, with = "dec_opt")]
    pub on_hand_quantity: Option<Decimal>,
}

/// `CustomerPaymentJournalLines`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomerPaymentJournalLine {
    /// Legal entity.
    #[serde(rename = "dataAreaId", skip_serializing_if = "Option::is_none")]
    pub data_area_id: Option<String>,
    /// Journal batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_batch_number: Option<String>,
    /// `Cust`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_type: Option<String>,
    /// Customer account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_display_value: Option<String>,
    /// Payment received.
    #[serde(default, with = "dec_opt", skip_serializing_if = "Option::is_none")]
    pub credit_amount: Option<Decimal>,
    /// Money returned.
    #[serde(default, with = "dec_opt", skip_serializing_if = "Option::is_none")]
    pub debit_amount: Option<Decimal>,
    /// Currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency_code: Option<String>,
    /// Reference (Shopify transaction id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_reference: Option<String>,
    /// Date (ISO 8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_date: Option<String>,
    /// Text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_text: Option<String>,
}

/// `PackingSlipTrackingInformation` (a shipment's tracking).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PackingSlipTrackingInformation {
    /// Legal entity.
    #[serde(rename = "dataAreaId", skip_serializing_if = "Option::is_none")]
    pub data_area_id: Option<String>,
    /// Order shipped.
    pub sales_order_number: String,
    /// Packing slip.
    pub packing_slip_number: String,
    /// Delivery date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_date: Option<String>,
    /// Tracking number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    /// Tracking URL.
    #[serde(rename = "TrackingURL", skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
}

/// An OData collection page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ODataPage<T> {
    /// Records.
    pub value: Vec<T>,
    /// Next page, opaque.
    #[serde(
        rename = "@odata.nextLink",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub next_link: Option<String>,
}
