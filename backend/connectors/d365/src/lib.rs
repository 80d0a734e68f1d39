//! Dynamics 365 F&O connector: Entra token cache, OData client, typed entities.
