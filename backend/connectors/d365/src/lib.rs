//! Dynamics 365 F&O connector: Entra token cache, OData client, typed entities.
//!
//! - [`auth`]: client-credentials token cache with refresh before expiry;
//! - [`odata`]: queries with paging, create/patch/delete/read by key, and
//!   the connection's "Test connection";
//! - [`batch`]: `$batch` with atomic changesets;
//! - [`error`]: the classified error every call returns;
//! - [`entities`] and [`convert`]: typed entities and their conversion to and
//!   from the canonical model.

pub mod auth;
pub mod batch;
pub mod convert;
pub mod entities;
pub mod error;
pub mod odata;

pub use error::D365Error;
pub use odata::{ConnectionSummary, D365Config, ODataClient, Query, test_connection};
