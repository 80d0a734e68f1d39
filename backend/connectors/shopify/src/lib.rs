//! Shopify connector: webhook verification, Admin GraphQL client, native payloads.
//!
//! For now: typed webhook payloads, their conversion to the canonical model, and
//! webhook signature verification. The GraphQL client comes with its own issue.

pub mod convert;
pub mod graphql;
pub mod payload;
pub mod webhook;
