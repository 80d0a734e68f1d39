use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn new() -> Self {
                $name(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map($name)
            }
        }
    };
}

id_type!(
    /// Identifies a tenant. Store functions over tenant-owned rows take it as a typed parameter,
    /// so a query cannot forget the tenant.
    TenantId
);
id_type!(
    /// Identifies a user (a person; may belong to several tenants).
    UserId
);
id_type!(
    /// Identifies a console session.
    SessionId
);
id_type!(
    /// Identifies an API key.
    ApiKeyId
);
id_type!(
    /// Identifies an invitation or password-reset token.
    ActionTokenId
);
id_type!(
    /// Identifies a connection to Shopify or D365.
    ConnectionId
);
id_type!(
    /// Identifies an integration pair.
    PairId
);
id_type!(
    /// Identifies an inbox event.
    InboxId
);
id_type!(
    /// Identifies a run.
    RunId
);
id_type!(
    /// Identifies an alert rule.
    AlertRuleId
);
id_type!(
    /// Identifies an alert incident.
    IncidentId
);
id_type!(
    /// Identifies an alert notification channel.
    ChannelId
);
id_type!(
    /// Identifies a billing plan.
    PlanId
);
id_type!(
    /// Identifies an invoice.
    InvoiceId
);
