//! Shopify connector: webhook verification, Admin GraphQL client, native payloads.
//!
//! Typed webhook payloads and their conversion to the canonical model,
//! webhook signature verification, and the Admin GraphQL client
//! ([`client`]) with cost-based throttling and error classification.

pub mod client;
pub mod convert;
pub mod graphql;
pub mod payload;
pub mod webhook;
