//! Dynamics 365 F&O connector: Entra token cache, OData client, typed entities.
//!
//! For now: typed entities and their conversion to and from the canonical
//! model. The token cache and OData client come with their own issue.

pub mod convert;
pub mod entities;
