//! Form extractors that make CSRF protection impossible to forget: a console form is only
//! deserialised after its `csrf` field matched the session's token.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::auth::session::{LOGIN_CSRF_COOKIE, read_cookie};
use crate::auth::{Actor, ConsoleActor, secret};
use crate::console::error_page;
use crate::{AppError, AppState};

const MAX_FORM_BYTES: usize = 64 * 1024;

async fn read_pairs(request: Request) -> Result<Vec<(String, String)>, AppError> {
    let body = axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES)
        .await
        .map_err(|_| AppError::BadRequest("The form is too large.".into()))?;
    Ok(url::form_urlencoded::parse(&body).into_owned().collect())
}

fn decode<T: DeserializeOwned>(pairs: &[(String, String)]) -> Result<T, AppError> {
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    serde_html_form::from_str(&encoded)
        .map_err(|e| AppError::BadRequest(format!("The form is incomplete: {e}")))
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .unwrap_or("")
}

/// A signed-in user's form submission whose CSRF token has been checked.
pub struct CsrfForm<T>(pub Actor, pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let ConsoleActor(actor) = ConsoleActor::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let pairs = read_pairs(Request::from_parts(parts, body))
            .await
            .map_err(error_page)?;
        let session = actor
            .session
            .as_ref()
            .ok_or_else(|| error_page(AppError::Unauthorized))?;
        if !state.sessions.csrf_ok(session.id, field(&pairs, "csrf")) {
            return Err(error_page(AppError::Forbidden(
                "This form expired or did not come from this site. Reload the page and try again."
                    .into(),
            )));
        }
        let value = decode(&pairs).map_err(error_page)?;
        Ok(CsrfForm(actor, value))
    }
}

/// A form posted before login (login, password reset, invitation); protected by a
/// double-submit cookie.
pub struct PublicForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for PublicForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, _state: &AppState) -> Result<Self, Response> {
        let cookie = read_cookie(request.headers(), LOGIN_CSRF_COOKIE).unwrap_or_default();
        let pairs = read_pairs(request).await.map_err(error_page)?;
        if cookie.is_empty() || !secret::same(&cookie, field(&pairs, "csrf")) {
            return Err(error_page(AppError::Forbidden(
                "This form expired or did not come from this site. Reload the page and try again."
                    .into(),
            )));
        }
        decode(&pairs).map(PublicForm).map_err(error_page)
    }
}
