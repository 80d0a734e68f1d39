//! Canonical model and mapping engine of Syncline (pure, no I/O).
//!
//! - [`model`]: the business types every flow converts through.
//! - [`schema`]: field catalogues of both systems (embedded data files).
//! - [`mapping`]: mapping documents, `compile` once, `apply` many, `preview`.
//! - [`templates`]: default mappings for every flow.
//! - [`suggest`]: auto-mapping suggestions.

pub mod billing;
pub mod mapping;
pub mod model;
pub mod schema;
pub mod suggest;
pub mod templates;

pub use model::{
    Address, CurrencyCode, Customer, Discount, FinancialStatus, Fulfillment, FulfillmentLine,
    InventoryLevel, ModelError, Money, Order, OrderLine, Payment, Product, Refund, RefundLine,
    TaxLine, Tracking, Transaction, TransactionKind, Variant,
};
