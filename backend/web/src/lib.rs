//! HTTP surface of Syncline: API, console, webhook intake, health.
//!
//! [`router`] builds the whole application from an [`AppState`]; [`Application`] binds it to a
//! listener (port 0 in tests) and serves it until told to stop.

mod assets;
mod console;
mod health;
mod startup;
mod state;

pub use startup::{Application, router};
pub use state::AppState;
