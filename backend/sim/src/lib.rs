//! Shopify and D365 emulators, started together.
