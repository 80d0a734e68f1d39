//! Authentication and authorisation: passwords, sessions, API keys, CSRF, throttling.

pub mod password;
pub mod principal;
pub mod secret;
pub mod session;
pub mod throttle;

pub use principal::{Actor, ApiActor, ConsoleActor, Permission, TenantContext};
