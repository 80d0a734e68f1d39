//! Shopify connector: webhook verification, Admin GraphQL client, native payloads.
