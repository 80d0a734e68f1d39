//! Who is calling: a console user (session cookie) or an API key (bearer token), and what
//! their role lets them do in the selected tenant.

use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use syncline_store::{ApiKey, Role, Session, Tenant, TenantStatus, User};

use crate::auth::secret::token_hash;
use crate::auth::session::{SESSION_COOKIE, SESSION_LIFETIME, read_cookie};
use crate::{AppError, AppState};

/// What a role may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read anything in the tenant.
    View,
    /// Replay runs, pause pairs.
    Operate,
    /// Invite people, change roles, manage API keys, connections and mappings.
    Manage,
    /// Read the audit log.
    ViewAudit,
    /// Billing and deleting the tenant.
    Own,
}

impl Permission {
    /// The least role that has this permission.
    pub fn least_role(self) -> Role {
        match self {
            Permission::View => Role::Viewer,
            Permission::Operate => Role::Operator,
            Permission::Manage => Role::Admin,
            Permission::ViewAudit | Permission::Own => Role::Owner,
        }
    }
}

/// The tenant a request works in, and the caller's role there.
#[derive(Debug, Clone)]
pub struct TenantContext {
    /// The tenant.
    pub tenant: Tenant,
    /// The caller's role in it.
    pub role: Role,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The person, for console sessions.
    pub user: Option<User>,
    /// The key, for API-key calls.
    pub api_key: Option<ApiKey>,
    /// The session, for console sessions.
    pub session: Option<Session>,
    /// The selected tenant, if any.
    pub tenant: Option<TenantContext>,
}

impl Actor {
    /// How the audit log names this caller.
    pub fn label(&self) -> String {
        match (&self.user, &self.api_key) {
            (Some(user), _) => user.email.clone(),
            (None, Some(key)) => format!("api-key:{} ({})", key.name, key.prefix),
            (None, None) => "anonymous".to_owned(),
        }
    }

    /// Platform administrators manage tenants.
    pub fn is_platform_admin(&self) -> bool {
        self.user
            .as_ref()
            .is_some_and(|user| user.is_platform_admin)
    }

    /// The selected tenant, provided the caller's role has `permission` there.
    pub fn require(&self, permission: Permission) -> Result<&TenantContext, AppError> {
        let context = self
            .tenant
            .as_ref()
            .ok_or_else(|| AppError::Forbidden("Select a tenant first.".into()))?;
        if context.role >= permission.least_role() {
            Ok(context)
        } else {
            Err(AppError::Forbidden(format!(
                "Your role ({}) does not allow this; it needs {} or above.",
                context.role,
                permission.least_role()
            )))
        }
    }

    /// Fails unless the caller is a platform administrator.
    pub fn require_platform_admin(&self) -> Result<(), AppError> {
        if self.is_platform_admin() {
            Ok(())
        } else {
            Err(AppError::Forbidden("Platform administrators only.".into()))
        }
    }
}

/// Where a renewed session cookie waits to be added to the response.
#[derive(Clone, Default)]
pub(crate) struct CookieSlot(Arc<Mutex<Vec<HeaderValue>>>);

impl CookieSlot {
    pub(crate) fn push(&self, value: HeaderValue) {
        if let Ok(mut cookies) = self.0.lock() {
            cookies.push(value);
        }
    }
}

/// Middleware: lets extractors set cookies (session renewal) on the response.
pub(crate) async fn cookie_slot(request: Request, next: Next) -> Response {
    let slot = CookieSlot::default();
    let mut request = request;
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    if let Ok(cookies) = slot.0.lock() {
        for cookie in cookies.iter() {
            response
                .headers_mut()
                .append(header::SET_COOKIE, cookie.clone());
        }
    }
    response
}

async fn from_api_key(state: &AppState, token: &str) -> Result<Actor, AppError> {
    let (key, status) = state
        .store
        .api_key_by_hash(&token_hash(token))
        .await?
        .ok_or(AppError::Unauthorized)?;
    if status != TenantStatus::Active {
        return Err(AppError::Forbidden("This tenant is suspended.".into()));
    }
    let tenant = state
        .store
        .tenant(key.tenant_id)
        .await?
        .ok_or(AppError::Unauthorized)?;
    if let Err(error) = state.store.touch_api_key(key.id, Utc::now()).await {
        tracing::warn!(%error, "cannot record API key use");
    }
    Ok(Actor {
        user: None,
        tenant: Some(TenantContext {
            tenant,
            role: key.role,
        }),
        api_key: Some(key),
        session: None,
    })
}

/// Resolves the session cookie, renewing it when past half its life. `None` when absent,
/// forged, expired or revoked.
pub(crate) async fn from_session_cookie(
    state: &AppState,
    parts: &Parts,
) -> Result<Option<Actor>, AppError> {
    let Some(cookie) = read_cookie(&parts.headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(claims) = state.sessions.verify(&cookie) else {
        return Ok(None);
    };
    let Some(session) = state.store.session(claims.session).await? else {
        return Ok(None);
    };
    let now = Utc::now();
    if session.revoked_at.is_some() || session.expires_at <= now || session.user_id != claims.user {
        return Ok(None);
    }
    let Some(user) = state.store.user(session.user_id).await? else {
        return Ok(None);
    };

    let mut tenant = None;
    if let Some(tenant_id) = session.tenant_id
        && let Some(role) = state.store.membership(tenant_id, user.id).await?
        && let Some(found) = state.store.tenant(tenant_id).await?
        && found.status == TenantStatus::Active
    {
        tenant = Some(TenantContext {
            tenant: found,
            role,
        });
    }

    if session.expires_at - now < SESSION_LIFETIME / 2 {
        let expires_at = now + SESSION_LIFETIME;
        state.store.renew_session(session.id, expires_at).await?;
        if let Some(slot) = parts.extensions.get::<CookieSlot>() {
            let value = state.sessions.issue(session.id, user.id, expires_at);
            slot.push(
                state
                    .sessions
                    .cookie(SESSION_COOKIE, &value, SESSION_LIFETIME),
            );
        }
    }
    Ok(Some(Actor {
        user: Some(user),
        api_key: None,
        session: Some(session),
        tenant,
    }))
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// A caller of `/api/v1`: an API key, or a console session (which must then send the CSRF
/// token in `x-csrf-token` on state-changing requests).
#[derive(Debug, Clone)]
pub struct ApiActor(pub Actor);

impl FromRequestParts<AppState> for ApiActor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(token) = bearer(parts) {
            return from_api_key(state, token).await.map(ApiActor);
        }
        let actor = from_session_cookie(state, parts)
            .await?
            .ok_or(AppError::Unauthorized)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let submitted = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let session = actor.session.as_ref().ok_or(AppError::Unauthorized)?;
            if !state.sessions.csrf_ok(session.id, submitted) {
                return Err(AppError::Forbidden("Missing or invalid CSRF token.".into()));
            }
        }
        Ok(ApiActor(actor))
    }
}

/// A signed-in console user; anyone else is sent to the login page.
#[derive(Debug, Clone)]
pub struct ConsoleActor(pub Actor);

/// Why a console request could not be authenticated.
pub struct ConsoleRejection(Response);

impl IntoResponse for ConsoleRejection {
    fn into_response(self) -> Response {
        self.0
    }
}

impl FromRequestParts<AppState> for ConsoleActor {
    type Rejection = ConsoleRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, ConsoleRejection> {
        match from_session_cookie(state, parts).await {
            Ok(Some(actor)) => Ok(ConsoleActor(actor)),
            Ok(None) => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/console");
                let target = format!(
                    "/login?next={}",
                    url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                Err(ConsoleRejection(Redirect::to(&target).into_response()))
            }
            Err(error) => Err(ConsoleRejection(crate::console::error_page(error))),
        }
    }
}
