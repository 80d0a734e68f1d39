//! Emulator of Dynamics 365 F&O OData and the Entra ID token endpoint.
