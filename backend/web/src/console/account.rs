//! Signing in and out, invitations, password resets, tenant selection, own account.

use std::net::SocketAddr;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use serde::Deserialize;
use syncline_store::{ActionKind, TenantId};

use super::{Chrome, CsrfForm, PageResult, PublicForm, page_err};
use crate::accounts::{self, LOGIN_FAILED};
use crate::auth::ConsoleActor;
use crate::auth::secret::{random_token, token_hash};
use crate::auth::session::{LOGIN_CSRF_COOKIE, SESSION_COOKIE, SESSION_LIFETIME, read_cookie};
use crate::{AppError, AppState};

/// The pre-login CSRF value: the existing cookie, or a new one to set.
fn login_csrf(state: &AppState, headers: &HeaderMap) -> (String, Option<axum::http::HeaderValue>) {
    match read_cookie(headers, LOGIN_CSRF_COOKIE).filter(|v| !v.is_empty()) {
        Some(value) => (value, None),
        None => {
            let value = random_token();
            let cookie =
                state
                    .sessions
                    .cookie(LOGIN_CSRF_COOKIE, &value, chrono::Duration::hours(12));
            (value, Some(cookie))
        }
    }
}

fn with_cookie(mut response: Response, cookie: Option<axum::http::HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Only local paths, so `next` cannot send people to another site.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next
    } else {
        "/console"
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    email: String,
    error: String,
    notice: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NextQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    notice: String,
}

pub(crate) async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> Response {
    let (csrf, cookie) = login_csrf(&state, &headers);
    let notice = match query.notice.as_str() {
        "reset" => "Your password was changed. Sign in with the new one.",
        "joined" => "Welcome aboard! Sign in to start.",
        "signed-out" => "You are signed out.",
        _ => "",
    };
    let page = LoginPage {
        csrf,
        next: query.next,
        email: String::new(),
        error: String::new(),
        notice: notice.to_owned(),
    };
    with_cookie(page.into_response(), cookie)
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    next: String,
    csrf: String,
}

pub(crate) async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    PublicForm(form): PublicForm<LoginForm>,
) -> Response {
    let address = peer.ip().to_string();
    match accounts::login(&state, &form.email, &form.password, &address).await {
        Ok(logged_in) => {
            let token = state.sessions.issue(
                logged_in.session.id,
                logged_in.user.id,
                logged_in.session.expires_at,
            );
            let target = if logged_in.session.tenant_id.is_none() && !logged_in.tenants.is_empty() {
                "/console/select-tenant".to_owned()
            } else {
                safe_next(&form.next).to_owned()
            };
            let mut response = Redirect::to(&target).into_response();
            response.headers_mut().append(
                header::SET_COOKIE,
                state
                    .sessions
                    .cookie(SESSION_COOKIE, &token, SESSION_LIFETIME),
            );
            response
        }
        Err(AppError::Validation(_)) => {
            let page = LoginPage {
                csrf: form.csrf,
                next: form.next,
                email: form.email,
                error: LOGIN_FAILED.to_owned(),
                notice: String::new(),
            };
            (StatusCode::UNAUTHORIZED, page).into_response()
        }
        Err(AppError::Forbidden(message)) => {
            let page = LoginPage {
                csrf: form.csrf,
                next: form.next,
                email: form.email,
                error: message,
                notice: String::new(),
            };
            (StatusCode::FORBIDDEN, page).into_response()
        }
        Err(other) => page_err(other),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Empty {}

pub(crate) async fn logout(
    State(state): State<AppState>,
    CsrfForm(actor, _): CsrfForm<Empty>,
) -> PageResult {
    if let Some(session) = &actor.session {
        state
            .store
            .revoke_session(session.id)
            .await
            .map_err(|e| page_err(e.into()))?;
    }
    let mut response = Redirect::to("/login?notice=signed-out").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        state.sessions.clear_cookie(SESSION_COOKIE),
    );
    Ok(response)
}

#[derive(Template, WebTemplate)]
#[template(path = "select_tenant.html")]
struct SelectTenantPage {
    chrome: Chrome,
}

pub(crate) async fn select_tenant_page(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
) -> PageResult {
    let chrome = Chrome::for_actor(&state, &actor).await.map_err(page_err)?;
    Ok(SelectTenantPage { chrome }.into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct TenantChoiceForm {
    tenant_id: String,
}

pub(crate) async fn select_tenant(
    State(state): State<AppState>,
    CsrfForm(actor, form): CsrfForm<TenantChoiceForm>,
) -> PageResult {
    let (Some(user), Some(session)) = (&actor.user, &actor.session) else {
        return Err(page_err(AppError::Unauthorized));
    };
    let tenant: TenantId = form
        .tenant_id
        .parse()
        .map_err(|_| page_err(AppError::NotFound))?;
    // Not a member (or another tenant's id): the same 404 as a missing tenant.
    state
        .store
        .membership(tenant, user.id)
        .await
        .map_err(|e| page_err(e.into()))?
        .ok_or_else(|| page_err(AppError::NotFound))?;
    let found = state
        .store
        .tenant(tenant)
        .await
        .map_err(|e| page_err(e.into()))?
        .ok_or_else(|| page_err(AppError::NotFound))?;
    if found.status != syncline_store::TenantStatus::Active {
        return Err(page_err(AppError::Forbidden(
            "This tenant is suspended.".into(),
        )));
    }
    state
        .store
        .set_session_tenant(session.id, tenant)
        .await
        .map_err(|e| page_err(e.into()))?;
    Ok(Redirect::to("/console").into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "invitation.html")]
struct InvitationPage {
    csrf: String,
    token: String,
    email: String,
    tenant: String,
    role: String,
    needs_password: bool,
    display_name: String,
    errors: Vec<crate::error::FieldError>,
}

async fn invitation_details(
    state: &AppState,
    token: &str,
) -> Result<(String, String, String, bool), AppError> {
    let pending = state
        .store
        .peek_action_token(ActionKind::Invite, &token_hash(token))
        .await?
        .ok_or(AppError::NotFound)?;
    let tenant_id = pending.tenant_id.ok_or(AppError::NotFound)?;
    let tenant = state
        .store
        .tenant(tenant_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let needs_password = state
        .store
        .user_by_email(&pending.email)
        .await?
        .is_none_or(|(user, _)| !user.has_password);
    Ok((
        pending.email,
        tenant.name,
        pending.role.map(|r| r.to_string()).unwrap_or_default(),
        needs_password,
    ))
}

pub(crate) async fn invitation_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> PageResult {
    let (email, tenant, role, needs_password) =
        invitation_details(&state, &token).await.map_err(|_| {
            page_err(AppError::BadRequest(
                "This invitation link is invalid, expired or already used. Ask for a new one."
                    .into(),
            ))
        })?;
    let (csrf, cookie) = login_csrf(&state, &headers);
    let page = InvitationPage {
        csrf,
        token,
        email,
        tenant,
        role,
        needs_password,
        display_name: String::new(),
        errors: Vec::new(),
    };
    Ok(with_cookie(page.into_response(), cookie))
}

#[derive(Debug, Deserialize)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    csrf: String,
}

pub(crate) async fn accept_invitation(
    State(state): State<AppState>,
    Path(token): Path<String>,
    PublicForm(form): PublicForm<PasswordForm>,
) -> PageResult {
    match accounts::accept_invitation(
        &state,
        &token,
        &form.display_name,
        &form.password,
        &form.confirm,
    )
    .await
    {
        Ok(_) => Ok(Redirect::to("/login?notice=joined").into_response()),
        Err(AppError::Validation(errors)) => {
            let (email, tenant, role, needs_password) =
                invitation_details(&state, &token).await.map_err(page_err)?;
            let page = InvitationPage {
                csrf: form.csrf,
                token,
                email,
                tenant,
                role,
                needs_password,
                display_name: form.display_name,
                errors,
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(AppError::NotFound) => Err(page_err(AppError::BadRequest(
            "This invitation link is invalid, expired or already used. Ask for a new one.".into(),
        ))),
        Err(other) => Err(page_err(other)),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "forgot.html")]
struct ForgotPage {
    csrf: String,
    sent: bool,
    error: String,
}

pub(crate) async fn forgot_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (csrf, cookie) = login_csrf(&state, &headers);
    with_cookie(
        ForgotPage {
            csrf,
            sent: false,
            error: String::new(),
        }
        .into_response(),
        cookie,
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct ForgotForm {
    email: String,
    csrf: String,
}

pub(crate) async fn forgot(
    State(state): State<AppState>,
    PublicForm(form): PublicForm<ForgotForm>,
) -> PageResult {
    match accounts::request_password_reset(&state, &form.email).await {
        Ok(()) => Ok(ForgotPage {
            csrf: form.csrf,
            sent: true,
            error: String::new(),
        }
        .into_response()),
        Err(AppError::Validation(fields)) => {
            let error = fields
                .first()
                .map(|f| f.message.clone())
                .unwrap_or_default();
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                ForgotPage {
                    csrf: form.csrf,
                    sent: false,
                    error,
                },
            )
                .into_response())
        }
        Err(other) => Err(page_err(other)),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "reset.html")]
struct ResetPage {
    csrf: String,
    token: String,
    errors: Vec<crate::error::FieldError>,
}

pub(crate) async fn reset_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> PageResult {
    state
        .store
        .peek_action_token(ActionKind::Reset, &token_hash(&token))
        .await
        .map_err(|e| page_err(e.into()))?
        .ok_or_else(|| {
            page_err(AppError::BadRequest(
                "This reset link is invalid, expired or already used.".into(),
            ))
        })?;
    let (csrf, cookie) = login_csrf(&state, &headers);
    Ok(with_cookie(
        ResetPage {
            csrf,
            token,
            errors: Vec::new(),
        }
        .into_response(),
        cookie,
    ))
}

pub(crate) async fn reset(
    State(state): State<AppState>,
    Path(token): Path<String>,
    PublicForm(form): PublicForm<PasswordForm>,
) -> PageResult {
    match accounts::reset_password(&state, &token, &form.password, &form.confirm).await {
        Ok(_) => Ok(Redirect::to("/login?notice=reset").into_response()),
        Err(AppError::Validation(errors)) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            ResetPage {
                csrf: form.csrf,
                token,
                errors,
            },
        )
            .into_response()),
        Err(AppError::NotFound) => Err(page_err(AppError::BadRequest(
            "This reset link is invalid, expired or already used.".into(),
        ))),
        Err(other) => Err(page_err(other)),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    display_name: String,
    errors: Vec<crate::error::FieldError>,
}

pub(crate) async fn account_page(
    State(state): State<AppState>,
    ConsoleActor(actor): ConsoleActor,
) -> PageResult {
    let chrome = Chrome::for_actor(&state, &actor).await.map_err(page_err)?;
    let display_name = actor
        .user
        .as_ref()
        .map(|u| u.display_name.clone())
        .unwrap_or_default();
    Ok(AccountPage {
        chrome,
        display_name,
        errors: Vec::new(),
    }
    .into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChangePasswordForm {
    current: String,
    password: String,
    confirm: String,
}

pub(crate) async fn change_password(
    State(state): State<AppState>,
    CsrfForm(actor, form): CsrfForm<ChangePasswordForm>,
) -> PageResult {
    let Some(user) = actor.user.clone() else {
        return Err(page_err(AppError::Unauthorized));
    };
    match accounts::change_password(&state, &user, &form.current, &form.password, &form.confirm)
        .await
    {
        // Every session ended, this one included: sign in again with the new password.
        Ok(()) => {
            let mut response = Redirect::to("/login?notice=reset").into_response();
            response.headers_mut().append(
                header::SET_COOKIE,
                state.sessions.clear_cookie(SESSION_COOKIE),
            );
            Ok(response)
        }
        Err(AppError::Validation(errors)) => {
            let chrome = Chrome::for_actor(&state, &actor).await.map_err(page_err)?;
            let page = AccountPage {
                chrome,
                display_name: user.display_name,
                errors,
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(other) => Err(page_err(other)),
    }
}
