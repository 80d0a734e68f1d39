//! Emulator of the Shopify Admin API and webhook sender.
