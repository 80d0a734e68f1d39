//! Canonical model and mapping engine of Syncline (pure, no I/O).

pub mod model;

pub use model::{
    Address, CurrencyCode, Customer, Discount, FinancialStatus, Fulfillment, FulfillmentLine,
    InventoryLevel, ModelError, Money, Order, OrderLine, Payment, Product, Refund, RefundLine,
    TaxLine, Tracking, Transaction, TransactionKind, Variant,
};
