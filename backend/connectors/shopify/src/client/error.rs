//! Error classification for Admin API calls.
//!
//! The connector decides *what* a failure is (retry later, fix credentials,
//! fix the data); the runner's shared policy decides what to do about it.

use std::time::Duration;

use serde::Deserialize;

/// One entry of a mutation's `userErrors`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserError {
    /// Path to the offending input field, e.g. `["webhookSubscription", "callbackUrl"]`.
    #[serde(default)]
    pub field: Option<Vec<String>>,
    /// Shopify's message.
    pub message: String,
    /// Error code, on payloads whose user errors carry one.
    #[serde(default)]
    pub code: Option<String>,
}

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(field) = self.field.as_ref().filter(|f| !f.is_empty()) {
            write!(f, "{}: ", field.join("."))?;
        }
        f.write_str(&self.message)?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        Ok(())
    }
}

fn join_user_errors(errors: &[UserError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A classified Admin API failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The cost budget (or REST bucket) is exhausted: retry after the wait.
    #[error(
        "Shopify throttled the request (API cost budget exhausted{}); retry in {:.1} s",
        code.as_deref().map(|c| format!(", {c}")).unwrap_or_default(),
        retry_after.as_secs_f64()
    )]
    Throttled {
        /// Suggested wait before retrying.
        retry_after: Duration,
        /// Upstream code (`THROTTLED`, `HTTP 429`).
        code: Option<String>,
    },
    /// Network failure, timeout or 5xx: retry with backoff.
    #[error("Shopify could not be reached or failed temporarily: {message}")]
    Transient {
        /// What happened, in plain words.
        message: String,
        /// `dns`, `tls`, `connection_refused`, `timeout`, `network` or `HTTP 5xx`.
        code: String,
    },
    /// Token invalid, revoked or missing a scope: fix the connection, do not retry.
    #[error("Shopify refused the access token ({code}): {message}")]
    Unauthorized {
        /// Shopify's message, or ours.
        message: String,
        /// `HTTP 401`, `HTTP 403`, `ACCESS_DENIED`.
        code: String,
    },
    /// The shop, API version or object does not exist.
    #[error("not found on Shopify: {0}")]
    NotFound(String),
    /// The mutation ran and refused the input.
    #[error("Shopify refused the change: {}", join_user_errors(.0))]
    UserErrors(Vec<UserError>),
    /// GraphQL errors: the document or its variables are wrong (a bug or an
    /// unsupported API version), or the answer could not be read.
    #[error("Shopify rejected the request{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Invalid {
        /// The first error's message (others appended).
        message: String,
        /// `extensions.code` of the first error, if any.
        code: Option<String>,
    },
    /// The connection settings are unusable (e.g. not a `*.myshopify.com` domain).
    #[error("invalid Shopify connection settings: {0}")]
    Config(String),
}

impl ClientError {
    /// Whether retrying the same request later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Transient { .. })
    }

    /// The wait Shopify asks for, when throttled.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Whether the credentials are at fault (the pair should pause).
    pub fn is_auth(&self) -> bool {
        matches!(self, Self::Unauthorized { .. })
    }

    /// The upstream or classification code, when there is one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Throttled { code, .. } | Self::Invalid { code, .. } => code.as_deref(),
            Self::Transient { code, .. } | Self::Unauthorized { code, .. } => Some(code),
            Self::UserErrors(e) => e.iter().find_map(|e| e.code.as_deref()),
            Self::NotFound(_) | Self::Config(_) => None,
        }
    }
}

/// Turns a reqwest failure into a readable transient error: DNS, TLS,
/// refused connections and timeouts get their own words.
pub(crate) fn network_error(err: &reqwest::Error, host: &str) -> ClientError {
    let (code, message) = describe_network_error(err, host);
    ClientError::Transient {
        message,
        code: code.into(),
    }
}

/// `(code, message)` for a reqwest error, after walking its source chain.
pub(crate) fn describe_network_error(err: &reqwest::Error, host: &str) -> (&'static str, String) {
    let mut chain = Vec::new();
    let mut refused = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        chain.push(e.to_string());
        source = e.source();
    }
    let all = chain.join(": ").to_lowercase();
    let last = chain.last().cloned().unwrap_or_default();
    if all.contains("dns error")
        || all.contains("failed to lookup address")
        || all.contains("name or service not known")
        || all.contains("no such host")
        || all.contains("nodename nor servname")
    {
        (
            "dns",
            format!(
                "the host name `{host}` could not be resolved (DNS lookup failed); check the address for typos"
            ),
        )
    } else if all.contains("certificate")
        || all.contains("tls")
        || all.contains("handshake")
        || all.contains("invalid peer")
    {
        (
            "tls",
            format!(
                "the TLS handshake with `{host}` failed ({last}); the server's certificate is not trusted or does not match the host"
            ),
        )
    } else if refused || all.contains("connection refused") {
        (
            "connection_refused",
            format!(
                "the connection to `{host}` was refused: nothing is listening at that address and port"
            ),
        )
    } else if err.is_timeout() || all.contains("timed out") {
        ("timeout", format!("the request to `{host}` timed out"))
    } else {
        (
            "network",
            format!("the connection to `{host}` failed ({last})"),
        )
    }
}
