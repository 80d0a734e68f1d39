//! Error classification for Entra ID and OData calls.
//!
//! The connector says *what* a failure is; the runner's shared retry policy
//! decides what to do: retry `Throttled`/`Transient`, dead-letter
//! `Permanent`/`NotFound`/`Invalid`, pause the pair on `Unauthorized`.

use std::time::Duration;

/// A classified D365 or Entra ID failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum D365Error {
    /// Service protection (429): retry after the wait.
    #[error("D365 throttled the request (service protection limit); retry in {} s", retry_after.as_secs_f64())]
    Throttled {
        /// `Retry-After`.
        retry_after: Duration,
    },
    /// Network failure, timeout or a 5xx that is not a data error: retry with backoff.
    #[error("D365 could not be reached or failed temporarily: {message}")]
    Transient {
        /// What happened, in plain words.
        message: String,
        /// `dns`, `tls`, `connection_refused`, `timeout`, `network` or `HTTP 5xx`.
        code: String,
    },
    /// Credentials or app registration are wrong: fix the connection, do not retry.
    #[error("D365 sign-in failed ({code}): {message}")]
    Unauthorized {
        /// What to fix.
        message: String,
        /// `AADSTS7000215`, `HTTP 401`, …
        code: String,
    },
    /// The entity or record does not exist.
    #[error("not found in D365: {0}")]
    NotFound(String),
    /// D365 refused the data (a 500 `AxODataWriteException` with its Infolog,
    /// or a 400 for a malformed request): never retried.
    #[error("D365 refused the data{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Permanent {
        /// The Infolog or OData message.
        message: String,
        /// `AxODataWriteException`, `HTTP 400`, …
        code: Option<String>,
    },
    /// The answer could not be understood.
    #[error("unexpected answer from D365: {0}")]
    Invalid(String),
    /// The connection settings are unusable.
    #[error("invalid D365 connection settings: {0}")]
    Config(String),
}

impl D365Error {
    /// Whether retrying the same request later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Transient { .. })
    }

    /// The wait D365 asks for, when throttled.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after } => Some(*retry_after),
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
            Self::Transient { code, .. } | Self::Unauthorized { code, .. } => Some(code),
            Self::Permanent { code, .. } => code.as_deref(),
            Self::Throttled { .. } => Some("HTTP 429"),
            Self::NotFound(_) | Self::Invalid(_) | Self::Config(_) => None,
        }
    }
}

/// A readable transient error for a reqwest failure: DNS, TLS, refused
/// connections and timeouts get their own words (from the source chain).
pub(crate) fn network_error(err: &reqwest::Error, host: &str) -> D365Error {
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
    let (code, message) = if all.contains("dns error")
        || all.contains("failed to lookup address")
        || all.contains("name or service not known")
        || all.contains("no such host")
        || all.contains("nodename nor servname")
    {
        (
            "dns",
            format!(
                "the host name `{host}` could not be resolved (DNS lookup failed); check the URL for typos"
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
    };
    D365Error::Transient {
        message,
        code: code.into(),
    }
}

/// `host[:port]` of a URL, for messages.
pub(crate) fn host_of(url: &url::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => url.as_str().to_owned(),
    }
}

/// Parses `Retry-After` (seconds, possibly fractional; or an HTTP date).
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<f64>() {
        return (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (when.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_milliseconds();
    Some(Duration::from_millis(secs.max(0) as u64))
}
