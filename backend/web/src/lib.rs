//! HTTP surface of Syncline: API, console, webhook intake, health.
