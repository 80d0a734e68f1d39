//! D365 entities to and from the canonical model.

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use syncline_core::model::{
    CurrencyCode, Customer, Fulfillment, FulfillmentLine, InventoryLevel, Money, Order, Payment,
    Product, Refund, Tracking, TransactionKind, Variant,
};

use crate::entities::{
    CustomerPaymentJournalLine, CustomerV3, PackingSlipTrackingInformation, ReleasedProductV2,
    SalesOrderHeaderV2, SalesOrderLine, WarehouseOnHandV2,
};

/// D365 sends this for "no date".
const EMPTY_DATE: &str = "1900-01-01T12:00:00Z";

fn iso(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Header and lines of a sales order for a canonical order, in `company`, for
/// customer `account` (found or created by the flow beforehand).
pub fn sales_order_from_core(
    o: &Order,
    company: &str,
    account: &str,
) -> (SalesOrderHeaderV2, Vec<SalesOrderLine>) {
    let ship = o.shipping_address.as_ref();
    let header = SalesOrderHeaderV2 {
        data_area_id: Some(company.to_owned()),
        customers_order_reference: Some(o.reference.clone()),
        customer_requisition_number: Some(o.external_id.clone()),
        ordering_customer_account_number: Some(account.to_owned()),
        invoice_customer_account_number: Some(account.to_owned()),
        currency_code: Some(o.currency.to_string()),
        requested_shipping_date: Some(iso(&o.created_at)),
        email: o.email.clone(),
        delivery_address_name: ship.map(|a| {
            [a.first_name.as_deref(), a.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")
        }),
        delivery_address_street: ship.and_then(|a| a.line1.clone()),
        delivery_address_city: ship.and_then(|a| a.city.clone()),
        delivery_address_zip_code: ship.and_then(|a| a.postal_code.clone()),
        delivery_address_state_id: ship.and_then(|a| a.region_code.clone()),
        delivery_address_country_region_iso_code: ship.and_then(|a| a.country_code.clone()),
        order_total_tax_amount: Some(o.tax_total.amount),
        order_total_charges_amount: Some(o.shipping_total.amount),
        ..Default::default()
    };
    let lines = o
        .lines
        .iter()
        .map(|l| SalesOrderLine {
            data_area_id: Some(company.to_owned()),
            line_number: Some(Decimal::from(l.line_number)),
            item_number: l.sku.clone(),
            ordered_sales_quantity: Some(l.quantity),
            sales_price: Some(l.unit_price.amount),
            line_discount_amount: l.discount_total().ok().map(|m| m.amount),
            customers_line_number: Some(i64::from(l.line_number)),
            line_description: Some(l.title.clone()),
            ..Default::default()
        })
        .collect();
    (header, lines)
}

/// A credit note: a sales order with negative quantities referencing the refund.
pub fn credit_note_from_core(
    r: &Refund,
    company: &str,
    account: &str,
    currency: CurrencyCode,
) -> (SalesOrderHeaderV2, Vec<SalesOrderLine>) {
    let header = SalesOrderHeaderV2 {
        data_area_id: Some(company.to_owned()),
        customers_order_reference: Some(format!("R-{}", r.external_id)),
        customer_requisition_number: Some(r.order_external_id.clone()),
        ordering_customer_account_number: Some(account.to_owned()),
        currency_code: Some(currency.to_string()),
        requested_shipping_date: r.created_at.as_ref().map(iso),
        ..Default::default()
    };
    let lines = r
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| SalesOrderLine {
            data_area_id: Some(company.to_owned()),
            line_number: Some(Decimal::from(i + 1)),
            item_number: l.sku.clone(),
            ordered_sales_quantity: Some(-l.quantity),
            line_amount: Some(-l.subtotal.amount),
            ..Default::default()
        })
        .collect();
    (header, lines)
}

/// A customer record for a canonical customer.
pub fn customer_from_core(
    c: &Customer,
    company: &str,
    group: &str,
    default_currency: CurrencyCode,
) -> CustomerV3 {
    let a = c.default_address.as_ref();
    CustomerV3 {
        data_area_id: Some(company.to_owned()),
        customer_account: c.account.clone(),
        party_type: Some("Person".to_owned()),
        person_first_name: clip(c.first_name.as_deref(), PERSON_NAME_MAX),
        person_last_name: clip(c.last_name.as_deref(), PERSON_NAME_MAX),
        organization_name: None,
        primary_contact_email: c.email.clone(),
        primary_contact_phone: c.phone.clone(),
        customer_group_id: Some(group.to_owned()),
        sales_currency_code: Some(c.currency.unwrap_or(default_currency).to_string()),
        address_street: a.and_then(|a| a.line1.clone()),
        address_city: a.and_then(|a| a.city.clone()),
        address_zip_code: a.and_then(|a| a.postal_code.clone()),
        address_state: a.and_then(|a| a.region_code.clone()),
        address_country_region_iso_code: a.and_then(|a| a.country_code.clone()),
    }
}

/// `PersonFirstName` / `PersonLastName` are 25 characters in F&O (EDTs `FirstName`,
/// `LastName`; the emulator enforces the same); Shopify allows 255, so longer names are cut
/// rather than refused.
const PERSON_NAME_MAX: usize = 25;

fn clip(value: Option<&str>, max: usize) -> Option<String> {
    value.map(|v| {
        v.trim()
            .chars()
            .take(max)
            .collect::<String>()
            .trim_end()
            .to_owned()
    })
}

/// A customer read back from D365.
pub fn customer_to_core(c: &CustomerV3) -> Customer {
    Customer {
        account: c.customer_account.clone(),
        first_name: c.person_first_name.clone(),
        last_name: c.person_last_name.clone(),
        email: c.primary_contact_email.clone(),
        phone: c.primary_contact_phone.clone(),
        currency: c
            .sales_currency_code
            .as_deref()
            .and_then(|s| CurrencyCode::new(s).ok()),
        ..Default::default()
    }
}

/// A released product (and its released variants) as a canonical product.
pub fn product_to_core(
    p: &ReleasedProductV2,
    variants: &[ReleasedProductV2],
    currency: CurrencyCode,
) -> Product {
    let variant = |v: &ReleasedProductV2| Variant {
        external_id: Some(v.item_number.clone()),
        sku: Some(v.item_number.clone()),
        title: v.search_name.clone(),
        price: v.sales_price.map(|d| Money::new(d, currency)),
        compare_at_price: None,
        barcode: None,
        options: Vec::new(),
        inventory_item_id: None,
        taxable: true,
    };
    Product {
        external_id: Some(p.item_number.clone()),
        title: p
            .search_name
            .clone()
            .unwrap_or_else(|| p.item_number.clone()),
        description_html: None,
        vendor: None,
        product_type: p.product_group_id.clone(),
        handle: Some(p.item_number.to_lowercase()),
        active: p
            .product_lifecycle_state_id
            .as_deref()
            .is_none_or(|s| s != "Obsolete"),
        tags: Vec::new(),
        variants: if variants.is_empty() {
            vec![variant(p)]
        } else {
            variants.iter().map(variant).collect()
        },
        updated_at: None,
    }
}

/// An on-hand row as a canonical inventory level at its warehouse.
pub fn on_hand_to_core(r: &WarehouseOnHandV2) -> InventoryLevel {
    InventoryLevel {
        sku: Some(r.item_number.clone()),
        inventory_item_id: None,
        location: r.inventory_warehouse_id.clone(),
        available: r.available_on_hand_quantity.unwrap_or_default(),
        on_hand: r.on_hand_quantity,
        updated_at: None,
    }
}

/// A shipment: tracking rows of one packing slip plus its shipped lines.
pub fn shipment_to_core(
    order_external_id: &str,
    tracking: &[PackingSlipTrackingInformation],
    lines: &[SalesOrderLine],
) -> Fulfillment {
    Fulfillment {
        external_id: tracking.first().map(|t| t.packing_slip_number.clone()),
        order_external_id: order_external_id.to_owned(),
        status: Some("success".to_owned()),
        tracking: Tracking {
            company: None,
            numbers: tracking
                .iter()
                .filter_map(|t| t.tracking_number.as_deref().map(str::trim))
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect(),
            urls: tracking
                .iter()
                .filter_map(|t| t.tracking_url.clone())
                .collect(),
        },
        lines: lines
            .iter()
            .map(|l| FulfillmentLine {
                line_external_id: l.customers_line_number.map(|n| n.to_string()),
                sku: l.item_number.clone(),
                quantity: l.ordered_sales_quantity.unwrap_or_default(),
            })
            .collect(),
        shipped_at: tracking
            .first()
            .and_then(|t| t.delivery_date.as_deref())
            .filter(|d| *d != EMPTY_DATE)
            .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
            .map(|d| d.with_timezone(&Utc)),
    }
}

/// A customer payment journal line for a transaction: payments credit the
/// customer, refunds debit it.
pub fn payment_journal_line_from_core(
    p: &Payment,
    company: &str,
    account: &str,
) -> CustomerPaymentJournalLine {
    let (credit, debit) = match p.kind {
        TransactionKind::Refund => (None, Some(p.amount.amount)),
        _ => (Some(p.amount.amount), None),
    };
    CustomerPaymentJournalLine {
        data_area_id: Some(company.to_owned()),
        journal_batch_number: None,
        account_type: Some("Cust".to_owned()),
        account_display_value: Some(account.to_owned()),
        credit_amount: credit,
        debit_amount: debit,
        currency_code: Some(p.amount.currency.to_string()),
        payment_reference: Some(p.external_id.clone()),
        transaction_date: p.processed_at.as_ref().map(iso),
        transaction_text: Some(
            [
                Some(format!("{:?}", p.kind).to_lowercase()),
                p.gateway.clone(),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
        ),
    }
}
