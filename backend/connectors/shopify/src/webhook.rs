//! Webhook authentication: `X-Shopify-Hmac-Sha256` = base64(HMAC-SHA256(secret, raw body)).
//!
//! Verification is constant time (the MAC comparison is `hmac`'s `verify_slice`)
//! and accepts the previous secret until its grace period ends, because Shopify
//! may keep signing with the old secret for up to an hour after a rotation.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// A mandatory header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// The signature does not match any accepted secret.
    #[error("invalid webhook signature")]
    BadSignature,
}

/// A signing secret that never prints.
#[derive(Clone)]
pub struct SigningSecret(Vec<u8>);

impl SigningSecret {
    /// Wraps the app's client secret.
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self(secret.into())
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(<redacted>)")
    }
}

/// The secrets a connection accepts: the current one and, during a rotation,
/// the previous one until `previous_valid_until`.
#[derive(Debug, Clone)]
pub struct WebhookSecrets {
    /// Secret in force.
    pub current: SigningSecret,
    /// Secret replaced by the last rotation.
    pub previous: Option<SigningSecret>,
    /// End of the grace period for `previous`.
    pub previous_valid_until: Option<DateTime<Utc>>,
}

/// Which secret matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The current secret.
    Current,
    /// The previous secret, inside its grace period.
    Previous,
}

/// The signature Shopify would send for `body` (for tests and the emulator).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Constant-time check of one secret against the header value. An empty secret
/// never verifies: it would mean a connection saved without its signing secret.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    if secret.is_empty() {
        return false;
    }
    let Ok(expected) = STANDARD.decode(header.trim()) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

impl WebhookSecrets {
    /// Only a current secret.
    pub fn new(current: SigningSecret) -> Self {
        Self {
            current,
            previous: None,
            previous_valid_until: None,
        }
    }

    /// Verifies a delivery at time `now`.
    pub fn verify(
        &self,
        body: &[u8],
        header: &str,
        now: DateTime<Utc>,
    ) -> Result<Verified, WebhookError> {
        // Both checks always run so that timing does not reveal which secret matched.
        let cur = verify(&self.current.0, body, header);
        let prev = match (&self.previous, self.previous_valid_until) {
            (Some(p), Some(until)) => verify(&p.0, body, header) && now <= until,
            _ => false,
        };
        match (cur, prev) {
            (true, _) => Ok(Verified::Current),
            (false, true) => Ok(Verified::Previous),
            _ => Err(WebhookError::BadSignature),
        }
    }
}

/// The delivery headers the intake needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookHeaders {
    /// `X-Shopify-Topic`, e.g. `orders/create`.
    pub topic: String,
    /// `X-Shopify-Hmac-Sha256`.
    pub hmac: String,
    /// `X-Shopify-Shop-Domain`.
    pub shop_domain: String,
    /// `X-Shopify-API-Version`.
    pub api_version: String,
    /// `X-Shopify-Webhook-Id`: the deduplication key.
    pub webhook_id: String,
    /// `X-Shopify-Triggered-At`, when present.
    pub triggered_at: Option<String>,
    /// `X-Shopify-Event-Id`, when present.
    pub event_id: Option<String>,
    /// `X-Shopify-Name`, when present.
    pub name: Option<String>,
}

impl WebhookHeaders {
    /// Reads headers by case-insensitive name, with or without the `X-` prefix
    /// (the newer "events" deliveries drop it). Rejects a delivery missing any of
    /// the headers the official library requires.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, WebhookError> {
        let pairs: Vec<(String, &str)> = pairs
            .into_iter()
            .map(|(k, v)| {
                let k = k.to_ascii_lowercase();
                let k = k.strip_prefix("x-").map(str::to_owned).unwrap_or(k);
                (k, v)
            })
            .collect();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let need = |name: &'static str, header: &'static str| {
            get(name).ok_or(WebhookError::MissingHeader(header))
        };
        Ok(Self {
            hmac: need("shopify-hmac-sha256", "X-Shopify-Hmac-Sha256")?,
            topic: need("shopify-topic", "X-Shopify-Topic")?,
            shop_domain: need("shopify-shop-domain", "X-Shopify-Shop-Domain")?,
            api_version: need("shopify-api-version", "X-Shopify-API-Version")?,
            webhook_id: need("shopify-webhook-id", "X-Shopify-Webhook-Id")?,
            triggered_at: get("shopify-triggered-at"),
            event_id: get("shopify-event-id"),
            name: get("shopify-name"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use proptest::prelude::*;

    #[test]
    fn official_vectors() {
        assert_eq!(
            sign(b"test_secret_key", br#"{"foo": "bar"}"#),
            "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="
        );
        assert_eq!(
            sign(b"API_SECRET_KEY", b"{}"),
            "+ihUB5l+D7QrohDEi/6NcBcJRyKssyWqos13LmnsBbs="
        );
        assert!(verify(
            b"test_secret_key",
            br#"{"foo": "bar"}"#,
            "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="
        ));
        assert!(!verify(
            b"test_secret_key",
            br#"{"foo":"bar"}"#,
            "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="
        ));
        assert!(!verify(b"test_secret_key", b"{}", "not base64!"));
        assert!(!verify(b"", b"{}", &sign(b"", b"{}")));
    }

    #[test]
    fn previous_secret_only_during_grace() {
        let now = Utc::now();
        let s = WebhookSecrets {
            current: SigningSecret::new("new"),
            previous: Some(SigningSecret::new("old")),
            previous_valid_until: Some(now + Duration::hours(1)),
        };
        let old_sig = sign(b"old", b"{}");
        assert_eq!(
            s.verify(b"{}", &sign(b"new", b"{}"), now),
            Ok(Verified::Current)
        );
        assert_eq!(s.verify(b"{}", &old_sig, now), Ok(Verified::Previous));
        assert_eq!(
            s.verify(b"{}", &old_sig, now + Duration::hours(2)),
            Err(WebhookError::BadSignature)
        );
        assert!(!format!("{s:?}").contains("old"));
    }

    #[test]
    fn headers_case_and_prefix_insensitive() {
        let h = WebhookHeaders::from_pairs([
            ("x-shopify-topic", "orders/create"),
            ("X-Shopify-Hmac-SHA256", "abc"),
            ("shopify-shop-domain", "x.myshopify.com"),
            ("X-SHOPIFY-API-VERSION", "2026-07"),
            ("x-shopify-webhook-id", "w1"),
        ])
        .unwrap();
        assert_eq!(h.topic, "orders/create");
        assert_eq!(h.webhook_id, "w1");
        assert_eq!(
            WebhookHeaders::from_pairs([("x-shopify-topic", "t")]),
            Err(WebhookError::MissingHeader("X-Shopify-Hmac-Sha256"))
        );
    }

    proptest! {
        #[test]
        fn sign_then_verify(secret in proptest::collection::vec(any::<u8>(), 0..64), body in proptest::collection::vec(any::<u8>(), 0..256), flip in any::<usize>()) {
            let sig = sign(&secret, &body);
            prop_assert_eq!(verify(&secret, &body, &sig), !secret.is_empty());
            if !body.is_empty() {
                let mut other = body.clone();
                let i = flip % other.len();
                other[i] ^= 1;
                prop_assert!(!verify(&secret, &other, &sig));
            }
        }
    }
}
