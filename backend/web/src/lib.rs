//! HTTP surface of Syncline: API, console, webhook intake, health.
//!
//! [`router`] builds the whole application from an [`AppState`]; [`Application`] binds it to a
//! listener (port 0 in tests) and serves it until told to stop.

pub mod accounts;
pub mod alerting;
pub mod api;
mod assets;
pub mod auth;
pub mod billing;
pub mod connections;
pub mod console;
mod error;
mod health;
pub mod intake;
pub mod mail;
mod metrics;
pub mod oauth;
pub mod partners;
mod partners_d365;
pub mod privacy;
pub mod sandbox;
mod startup;
mod state;

pub use error::{AppError, FieldError};
pub use oauth::ShopifyApp;
pub use startup::{Application, router};
pub use state::{AppState, WebSettings};
