//! The console session cookie: a signed JWT naming a server-side session row, so logout and
//! password changes revoke it at once.

use axum::http::HeaderValue;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use syncline_store::{SessionId, UserId};

use crate::auth::secret;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "syncline_session";
/// Name of the pre-login CSRF cookie.
pub const LOGIN_CSRF_COOKIE: &str = "syncline_login_csrf";
/// Idle lifetime of a session; each use in its second half renews it.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sid: uuid::Uuid,
    sub: uuid::Uuid,
    iat: i64,
    exp: i64,
}

/// What a valid cookie says.
#[derive(Debug, Clone, Copy)]
pub struct SessionClaims {
    /// The session row.
    pub session: SessionId,
    /// Its user.
    pub user: UserId,
    /// When the cookie expires.
    pub expires_at: DateTime<Utc>,
}

/// Signs and checks session cookies and CSRF tokens.
#[derive(Clone)]
pub struct SessionKeys {
    secret: Vec<u8>,
    secure_cookies: bool,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("secure_cookies", &self.secure_cookies)
            .finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// Keys from a secret of at least 32 bytes; cookies get `Secure` when served over https.
    pub fn new(secret: Vec<u8>, secure_cookies: bool) -> Self {
        SessionKeys {
            secret,
            secure_cookies,
        }
    }

    /// A signed cookie value for the session.
    pub fn issue(&self, session: SessionId, user: UserId, expires_at: DateTime<Utc>) -> String {
        let claims = Claims {
            sid: session.0,
            sub: user.0,
            iat: Utc::now().timestamp(),
            exp: expires_at.timestamp(),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.secret),
        )
        .unwrap_or_default()
    }

    /// Checks signature and expiry.
    pub fn verify(&self, token: &str) -> Option<SessionClaims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(&self.secret),
            &validation,
        )
        .ok()?;
        Some(SessionClaims {
            session: SessionId(data.claims.sid),
            user: UserId(data.claims.sub),
            expires_at: DateTime::from_timestamp(data.claims.exp, 0)?,
        })
    }

    /// The CSRF token bound to a session: forms must echo it.
    pub fn csrf_token(&self, session: SessionId) -> String {
        secret::sign(&self.secret, &format!("csrf:{session}"))
    }

    /// Checks a submitted CSRF token against the session's.
    pub fn csrf_ok(&self, session: SessionId, submitted: &str) -> bool {
        secret::same(&self.csrf_token(session), submitted)
    }

    /// A `Set-Cookie` value.
    pub fn cookie(&self, name: &str, value: &str, max_age: Duration) -> HeaderValue {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        let text = format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            max_age.num_seconds().max(0)
        );
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// A `Set-Cookie` value that deletes the cookie.
    pub fn clear_cookie(&self, name: &str) -> HeaderValue {
        self.cookie(name, "", Duration::zero())
    }
}

/// Reads one cookie from a request's headers.
pub fn read_cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}
