//! HTTP surface of Syncline: API, console, webhook intake, health.
//!
//! [`router`] builds the whole application from an [`AppState`]; [`Application`] binds it to a
//! listener (port 0 in tests) and serves it until told to stop.

pub mod accounts;
pub mod api;
mod assets;
pub mod auth;
pub mod console;
mod error;
mod health;
pub mod mail;
mod startup;
mod state;

pub use error::{AppError, FieldError};
pub use startup::{Application, router};
pub use state::{AppState, WebSettings};
